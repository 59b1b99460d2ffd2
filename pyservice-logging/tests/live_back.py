"""The service the front service calls, served by LiveServer in the live tests."""

import pyservice

api = {
    "name": "back",
    "operations": ["lookup"],
    "plugins": {"logging": {"output": "stdout", "configure_stdlib": True}},
}
service = pyservice.Service(**api)


@service.operation("lookup")
def lookup(request, response, context):
    context.log.info("back handler", key=request.key)
    response.value = f"value of {request.key}"
