"""OpenAPI descriptions that drf-spectacular cannot infer by itself."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ApiTokenScheme(OpenApiAuthenticationExtension):
    target_class = "common.authentication.ApiTokenAuthentication"
    name = ["apiToken", "apiKey"]

    def get_security_requirement(self, auto_schema):
        """Either header will do (alternatives, not both at once)."""
        return [{name: []} for name in self.name]

    def get_security_definition(self, auto_schema):
        return [
            {
                "type": "apiKey",
                "in": "header",
                "name": "Authorization",
                "description": "`Token <key>`; keys are made with `python manage.py create_api_token NAME`",
            },
            {
                "type": "apiKey",
                "in": "header",
                "name": "X-API-Key",
                "description": "The raw key, as the VolSpike scripts send it (same keys)",
            },
        ]
