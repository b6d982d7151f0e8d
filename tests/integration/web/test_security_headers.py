"""Security headers on every response, and a CSP on pages."""


def test_pages_carry_a_content_security_policy(client):
    page = client.get("/login")
    assert page.status_code == 200
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp
    assert page.headers["X-Frame-Options"] == "DENY"


def test_every_response_carries_the_basic_headers(client, admin):
    for response in (client.get("/healthz"), client.get("/api/v1/dags", headers=admin)):
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "same-origin"
