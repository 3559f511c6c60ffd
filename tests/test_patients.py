"""Patients, panels, care teams."""

import uuid

import pytest

from tests.conftest import new_id

NEW_PATIENT = {"full_name": "Alex Doe", "date_of_birth": "1988-02-14", "timezone": "America/New_York"}


async def test_clinician_creates_patient_and_joins_care_team_as_prescriber(client, world):
    response = await client.post("/v1/patients", json={**NEW_PATIENT, "email": "Alex@Example.com",
                                                       "external_id": "MRN-7"}, headers=world.clinician.headers)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["organization_id"] == str(world.org_a.id)
    assert body["email"] == "alex@example.com"
    assert body["has_login"] is False
    assert [(m["user_id"], m["role"]) for m in body["care_team"]] == [(str(world.clinician.id), "prescriber")]
    again = await client.get(f"/v1/patients/{body['id']}", headers=world.clinician.headers)
    assert again.json() == body


async def test_admin_created_patient_has_no_care_team_and_is_invisible_to_clinicians(client, world):
    created = (await client.post("/v1/patients", json=NEW_PATIENT, headers=world.admin.headers)).json()
    assert created["care_team"] == []
    assert (await client.get(f"/v1/patients/{created['id']}", headers=world.clinician.headers)).status_code == 404


async def test_external_id_is_unique_per_organization(client, world):
    body = {**NEW_PATIENT, "external_id": "MRN-1"}
    assert (await client.post("/v1/patients", json=body, headers=world.admin.headers)).status_code == 201
    assert (await client.post("/v1/patients", json=body, headers=world.admin.headers)).status_code == 409
    # Another organization may use the same identifier.
    assert (await client.post("/v1/patients", json=body, headers=world.admin_b.headers)).status_code == 201


async def test_clinician_lists_own_panel_admin_lists_organization(client, world):
    def names(response):
        assert response.status_code == 200, response.text
        return [p["full_name"] for p in response.json()["items"]]

    assert names(await client.get("/v1/patients", headers=world.clinician.headers)) == ["Finn Fresh", "Pat Patient"]
    assert names(await client.get("/v1/patients", headers=world.other_clinician.headers)) == ["Quinn Other"]
    assert names(await client.get("/v1/patients", headers=world.admin.headers)) == [
        "Finn Fresh", "Pat Patient", "Quinn Other"]
    assert names(await client.get("/v1/patients", headers=world.admin_b.headers)) == ["Bo Bee"]


async def test_name_search_is_case_insensitive_and_literal(client, world):
    found = await client.get("/v1/patients", params={"q": "pAT"}, headers=world.admin.headers)
    assert [p["full_name"] for p in found.json()["items"]] == ["Pat Patient"]
    wildcard = await client.get("/v1/patients", params={"q": "%"}, headers=world.admin.headers)
    assert wildcard.json()["items"] == []


async def test_patient_list_pagination_neither_skips_nor_repeats(client, world):
    for i in range(7):
        await client.post("/v1/patients", json={**NEW_PATIENT, "full_name": f"Zed {i:02d}"}, headers=world.admin.headers)
    seen, cursor = [], None
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/v1/patients", params=params, headers=world.admin.headers)).json()
        seen += [p["id"] for p in page["items"]]
        # A patient inserted mid-listing, sorting after the cursor, still shows up.
        if len(seen) == 3:
            await client.post("/v1/patients", json={**NEW_PATIENT, "full_name": "Zz Late"}, headers=world.admin.headers)
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 3 + 7 + 1


async def test_bad_cursor_is_422(client, world):
    response = await client.get("/v1/patients", params={"cursor": "bm90IGEgY3Vyc29y"}, headers=world.admin.headers)
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["query", "cursor"]


@pytest.mark.parametrize("limit", [0, 201, -1, "many"])
async def test_limit_is_bounded(client, world, limit):
    response = await client.get("/v1/patients", params={"limit": limit}, headers=world.admin.headers)
    assert response.status_code == 422


async def test_patch_changes_only_given_fields(client, world):
    response = await client.patch(f"/v1/patients/{world.patient.id}", json={"timezone": "Europe/Paris"},
                                  headers=world.clinician.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["timezone"] == "Europe/Paris"
    assert body["full_name"] == "Pat Patient"
    assert body["updated_at"] > body["created_at"]


@pytest.mark.parametrize("field", ["full_name", "date_of_birth", "timezone"])
async def test_required_fields_cannot_be_cleared(client, world, field):
    response = await client.patch(f"/v1/patients/{world.patient.id}", json={field: None},
                                  headers=world.clinician.headers)
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["body", field]


async def test_patch_to_a_taken_external_id_is_409(client, world):
    await client.patch(f"/v1/patients/{world.other_patient.id}", json={"external_id": "MRN-9"},
                       headers=world.admin.headers)
    response = await client.patch(f"/v1/patients/{world.patient.id}", json={"external_id": "MRN-9"},
                                  headers=world.admin.headers)
    assert response.status_code == 409


async def test_care_team_assignment_gives_access_and_removal_takes_it(client, world):
    path = f"/v1/patients/{world.patient.id}/care-team/{world.other_clinician.id}"
    assert (await client.put(path, json={"role": "therapist"}, headers=world.clinician.headers)).status_code == 201
    assert (await client.get(f"/v1/patients/{world.patient.id}", headers=world.other_clinician.headers)).status_code == 200
    changed = await client.put(path, json={"role": "monitor"}, headers=world.clinician.headers)
    assert changed.status_code == 200 and changed.json()["role"] == "monitor"
    team = (await client.get(f"/v1/patients/{world.patient.id}", headers=world.admin.headers)).json()["care_team"]
    assert {m["user_id"]: m["role"] for m in team} == {
        str(world.clinician.id): "prescriber", str(world.monitor.id): "monitor", str(world.therapist.id): "therapist",
        str(world.other_clinician.id): "monitor"}
    assert (await client.delete(path, headers=world.admin.headers)).status_code == 204
    assert (await client.get(f"/v1/patients/{world.patient.id}", headers=world.other_clinician.headers)).status_code == 404
    assert (await client.delete(path, headers=world.admin.headers)).status_code == 404


async def test_only_clinicians_of_the_organization_join_care_teams(client, world):
    base = f"/v1/patients/{world.patient.id}/care-team"
    cross_org = await client.put(f"{base}/{world.clinician_b.id}", json={"role": "monitor"}, headers=world.admin.headers)
    assert cross_org.status_code == 404
    admin = await client.put(f"{base}/{world.admin.id}", json={"role": "monitor"}, headers=world.admin.headers)
    assert admin.status_code == 422
    patient = await client.put(f"{base}/{world.patient_user.id}", json={"role": "monitor"}, headers=world.admin.headers)
    assert patient.status_code == 404
    unknown_role = await client.put(f"{base}/{world.other_clinician.id}", json={"role": "owner"},
                                    headers=world.admin.headers)
    assert unknown_role.status_code == 422


async def test_has_login_reflects_enrollment(client, world):
    body = (await client.get(f"/v1/patients/{world.patient.id}", headers=world.admin.headers)).json()
    assert body["has_login"] is True


async def test_unknown_patient_is_404(client, world):
    assert (await client.get(f"/v1/patients/{new_id()}", headers=world.admin.headers)).status_code == 404
    assert (await client.patch(f"/v1/patients/{uuid.uuid4()}", json={}, headers=world.admin.headers)).status_code == 404


async def test_a_patient_sets_their_own_time_zone_and_nothing_else(client, world):
    url = f"/v1/patients/{world.patient.id}"
    moved = await client.patch(url, json={"timezone": "Europe/Rome"}, headers=world.patient_user.headers)
    assert moved.status_code == 200 and moved.json()["timezone"] == "Europe/Rome"
    me = await client.get("/v1/me", headers=world.patient_user.headers)
    assert me.json()["timezone"] == "Europe/Rome"
    for body in ({"timezone": "Europe/Rome", "full_name": "Someone Else"}, {"external_id": "MRN-9"}):
        assert (await client.patch(url, json=body, headers=world.patient_user.headers)).status_code == 403
    other = await client.patch(f"/v1/patients/{world.other_patient.id}", json={"timezone": "Asia/Tokyo"},
                               headers=world.patient_user.headers)
    assert other.status_code == 404
    assert (await client.patch(url, json={"timezone": "Mars/Olympus"},
                               headers=world.patient_user.headers)).status_code == 422
