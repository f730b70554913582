"""The servicer context every handler receives. grpc types it by request and
response message; our handlers type those in their own signatures."""

from __future__ import annotations

from typing import Any

import grpc

Context = grpc.aio.ServicerContext[Any, Any]
