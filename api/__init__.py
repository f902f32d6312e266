"""HTTP layer: the falcon app factory, resources, schemas, middleware and the OpenAPI document."""
