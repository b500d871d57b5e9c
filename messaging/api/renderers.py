"""The API's JSON renderer: an answer is always valid UTF-8, whatever a row holds."""

import json
import logging

from rest_framework.renderers import JSONRenderer

from messaging.storable import LONE_SURROGATE

logger = logging.getLogger(__name__)


class SafeJSONRenderer(JSONRenderer):
    """Input with unpaired surrogates is refused (messaging.storable), but a row stored
    before that, or by a path we do not know of, must not turn every list that holds it
    into a 500 for everyone: such characters go out as U+FFFD and the event is logged."""

    def render(self, data, accepted_media_type=None, renderer_context=None):
        try:
            return super().render(data, accepted_media_type, renderer_context)
        except UnicodeEncodeError:
            request = (renderer_context or {}).get("request")
            logger.warning("api answer held unpaired surrogates, sent as U+FFFD: %s", getattr(request, "path", ""))
            text = json.dumps(data, cls=self.encoder_class, ensure_ascii=False, allow_nan=not self.strict, separators=(",", ":"))
            text = LONE_SURROGATE.sub("\ufffd", text).replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
            return text.encode()
