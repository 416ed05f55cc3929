"""Read routes answered without FastAPI's per-request dependency solving.

FastAPI resolves a route's parameters on every request by walking the route's dependency
tree and each parameter's annotation (sequence or scalar, aliases, model fields), which on
the README's request cost more of the event loop's time than the answer from the snapshot.
A :class:`DirectRoute` keeps the route's declaration — path, OpenAPI parameters, security,
responses — and answers a request with:

1. the read-key check of :mod:`api.security` (:func:`api.security.admit`): 401/403 (503)
   before anything else, as the route's ``ReadKey`` dependency gives them;
2. one validation of the path and query parameters together, by a pydantic model built
   once from the declaration: an invalid request is one 422 listing every invalid
   parameter with ``loc`` ``["path", name]`` or ``["query", name]``, path parameters first,
   as FastAPI lists them (the answer itself is :func:`api.errors.validation_errors`');
3. a direct call of the endpoint, which returns its :class:`~starlette.responses.Response`.

What a direct route may declare is checked when it is built (``TypeError`` otherwise): an
``async`` endpoint whose parameters are path and query parameters (scalars, or a query
model) and the ``Request``, no aliases, no body, and as dependencies exactly
:data:`api.security.ReadKey` (the router's). Exceptions reach the app's handlers
(api/errors.py) as from any route. FastAPI's OpenTelemetry spans (``DPGCN_API_OTEL``) do not
cover the endpoints of these routes.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError, create_model

from api.security import HEADER, ReadKey, admit


class DirectRoute(APIRoute):
    """An :class:`~fastapi.routing.APIRoute` answered as the module docstring says."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        dependant = self.dependant
        endpoint = dependant.call
        if (
            endpoint is None
            or not inspect.iscoroutinefunction(endpoint)
            or [d.call for d in dependant.dependencies] != [ReadKey.dependency]
            or dependant.header_params
            or dependant.cookie_params
            or dependant.body_params
            or self.body_field is not None
        ):
            raise TypeError(f"{self.path}: not a direct route (see api/direct.py)")
        fields: dict[str, Any] = {}
        where: dict[str, str] = {}
        scalars: list[str] = []
        models: list[tuple[str, type[BaseModel]]] = []
        for source, params in (("path", dependant.path_params), ("query", dependant.query_params)):
            for param in params:
                info = param.field_info
                annotation = info.annotation
                if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                    models.append((param.name, annotation))
                    named = annotation.model_fields
                else:
                    scalars.append(param.name)
                    named = {param.name: info}
                for name, field in named.items():
                    if field.alias not in (None, name) or name in fields:
                        raise TypeError(f"{self.path}: parameter {name!r} aliased or repeated")
                    fields[name] = (field.annotation, field)
                    where[name] = source
        validator = create_model(f"{self.name}_params", **fields)
        wants_request = dependant.request_param_name

        async def handler(request: Request) -> Response:
            stored = await admit(request.app.state.keys, request.headers.get(HEADER), "read")
            request.state.key_id = stored.id
            try:
                values = validator.model_validate({**request.query_params, **request.path_params})
            except ValidationError as e:
                errors = e.errors(include_url=False)
                for error in errors:
                    error["loc"] = (where[str(error["loc"][0])], *error["loc"])
                raise RequestValidationError(errors) from None
            given = values.model_fields_set
            kwargs: dict[str, Any] = {name: getattr(values, name) for name in scalars}
            for name, model in models:
                kwargs[name] = model.model_construct(
                    {n for n in model.model_fields if n in given},
                    **{n: getattr(values, n) for n in model.model_fields},
                )
            if wants_request is not None:
                kwargs[wants_request] = request
            response: Response = await endpoint(**kwargs)
            return response

        return handler
