"""Greets whoever the run's conf names (or the world)."""


def handler(event, context):
    name = (event.get("conf") or {}).get("name", "world")
    context.log.info("greeting %s", name)
    return {"greeting": f"hello, {name}", "length": len(name)}
