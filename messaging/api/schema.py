"""OpenAPI generation: every authenticated operation also documents the problem responses
any endpoint can give (401, 403, 429), so clients see the error format everywhere."""

from drf_spectacular.openapi import AutoSchema

from messaging.api.problems import CONTENT_TYPE, ProblemSerializer

COMMON_PROBLEMS = {
    "401": "Missing, invalid or revoked credentials.",
    "403": "Your role does not allow this.",
    "429": "Too many requests; see Retry-After.",
}


class ProblemAutoSchema(AutoSchema):
    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        if direction != "response" or not self.get_auth():
            return responses
        for status, description in COMMON_PROBLEMS.items():
            if status not in responses:
                response = self._get_response_for_code(ProblemSerializer, status, media_types=[CONTENT_TYPE], direction=direction)
                responses[status] = {**response, "description": description}
        return responses
