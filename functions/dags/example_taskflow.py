"""A DAG written in Python: `python -m app deploy functions/` turns it into the DAG spec
`example_taskflow` and one function per task (`example_taskflow.fetch`, ...), each running
this file with the decorated function as its handler."""

from app.cli.authoring import DAG, task


@task(retries=1, retry_delay=1)
def fetch(event, context):
    """Reads the words to count from the run's conf."""
    text = (event.get("conf") or {}).get("text", "the quick brown fox")
    context.log.info("fetched %d characters", len(text))
    return {"words": text.split()}


@task(args={"min_length": 4})
def long_words(event, context):
    words = event["upstream"]["fetch"]["words"]
    return [word for word in words if len(word) >= event["args"]["min_length"]]


@task
def count(event, context):
    return len(event["upstream"]["fetch"]["words"])


@task(trigger_rule="all_done")
def report(event, context):
    upstream = event["upstream"]
    print(f"{upstream['count']} words, long ones: {upstream['long_words']}")
    return {"count": upstream["count"], "long_words": upstream["long_words"]}


with DAG("example_taskflow", description="fetch fans out to two tasks; report joins them"):
    fetch >> [long_words, count] >> report
