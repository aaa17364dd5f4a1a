import logging

from django.http import HttpRequest, HttpResponse

from platform_site import request_context


class RequestContextMiddleware:
    """Gives every request an id (echoed as X-Request-ID) and publishes id and client IP."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.request_id = request_context.request_id_for(request)
        request.client_ip = request_context.client_ip(request)
        token = request_context.activate(
            request_context.RequestContext(request_id=request.request_id, ip=request.client_ip)
        )
        try:
            response = self.get_response(request)
        finally:
            request_context.deactivate(token)
        response["X-Request-ID"] = request.request_id
        return response


class RequestContextLogFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_context.current().request_id or "-"
        return True
