"""Joins its upstream results: the sum of their `value`s, by task."""


def handler(event, context):
    values = {task_id: result["value"] for task_id, result in sorted(event["upstream"].items())}
    print(f"summing {values}")
    return {"total": sum(values.values()), "parts": values}
