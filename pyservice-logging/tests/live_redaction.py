"""A service with bodies logged, served by LiveServer: card numbers as keys and numbers, deep bodies."""

import pyservice

api = {
    "name": "deep",
    "operations": ["store", "note"],
    "plugins": {"logging": {"output": "stdout", "configure_stdlib": True, "log_bodies": True, "body_limit": 100000}},
}
service = pyservice.Service(**api)


@service.operation("store")
def store(request, response, context):
    # Answers a small summary, whatever the depth of what it was sent.
    depth = 0
    value = request.nested
    while isinstance(value, list) and value:
        depth += 1
        value = value[0]
    response.depth = depth


@service.operation("note")
def note(request, response, context):
    # The handler logs what it was sent: card numbers as keys, integers and floats.
    context.log.info("noted", cards={request.card: "key"}, number=request.number, real=request.real)
    context.log.info("nested", payload={"by_card": {request.card: 1}, "numbers": [request.number, request.real]})
    response.ok = True
