"""schemathesis hooks for the contract fuzzing (loaded through schemathesis.toml's `hooks`)

The literature import takes RIS and PubMed MEDLINE files as they are exported: plain text under
their own media types, which schemathesis has no serializer for. They are sent as UTF-8 text.
"""

import schemathesis

schemathesis.serializer.alias(["application/x-research-info-systems", "application/x-nbib"], "text/plain")
