"""The application's single route table; handler modules register on import."""

from gateway.routing import RouteTable

routes = RouteTable()
