"""Multiplies the upstream greeting's length by the task's `factor` argument."""


def handler(event, context):
    (greeting,) = event["upstream"].values()
    factor = event["args"].get("factor", 1)
    value = greeting["length"] * factor
    print(f"{greeting['length']} x {factor} = {value}")
    return {"value": value}
