"""Response headers every page gets."""

# No inline script anywhere: data reaches scripts through json_script or data- attributes, so
# a hostile name in the database cannot run as code even if some template forgot to escape it.
# Inline style attributes stay allowed (the pages and Django's admin set colours with them).
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob:",
        "media-src 'self' blob:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
# django-rq's pages ship their own inline scripts (select-all checkboxes); they are staff-only
# and show no user-written markup, so they alone may run inline script.
INLINE_SCRIPT_PREFIXES = ("/admin/rq/",)


class SecurityHeadersMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        policy = CONTENT_SECURITY_POLICY
        if request.path.startswith(INLINE_SCRIPT_PREFIXES):
            policy = policy.replace("script-src 'self'", "script-src 'self' 'unsafe-inline'")
        response.headers.setdefault("Content-Security-Policy", policy)
        return response
