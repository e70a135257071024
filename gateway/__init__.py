"""The gateway: one ASGI app whose resolvers and sockets call the service facades."""

from gateway.app import create_app
from gateway.graphql import Services
from gateway.push import PushHub
from gateway.sockets import build_socketio

__all__ = ["PushHub", "Services", "build_socketio", "create_app"]
