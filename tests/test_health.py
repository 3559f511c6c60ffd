async def test_healthz(client):
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_reports_schema_head(client, app):
    response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["schema_revision"] == app.state.schema_head


async def test_readyz_fails_when_schema_behind(client, app):
    app.state.schema_head = "ffffffffffff"
    response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
