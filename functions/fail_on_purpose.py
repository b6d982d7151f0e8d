"""Fails every time, to show a failed task, its traceback and what happens downstream."""


def handler(event, context):
    context.log.warning(
        "about to fail on purpose (try %s of %s)", context.try_number, context.max_tries
    )
    raise RuntimeError("this task fails on purpose")
