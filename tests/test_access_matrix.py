"""The contract's "Roles and who sees what" for the foundation's routes: admin, clinician on the care team,
clinician off it, another organization, the patient, another patient and bad tokens, each with exactly its answer.
"""

import pytest

from api.security.scopes import Scope
from tests.factories import PASSWORD
from tests.matrix import Route, by_role, cell_id, cells, check_route, on_patient

ADMIN_ONLY = by_role(admin=201, clinician=403, patient=403)

# The target patient (org A) has `clinician` as prescriber, `monitor` and `therapist` on its care team, and
# `patient_user` as its login. Demographics and enrollment codes: any care-team clinician; the team itself: admins
# and prescribers.
PATIENT_READ = on_patient(200, scope=Scope.patients_read)
PATIENT_WRITE = on_patient(200, patient=403)
CARE_TEAM_WRITE = on_patient(200, monitor=403, therapist=403, patient=403)

ROUTES = [
    Route("me", "GET", lambda w: "/v1/me", by_role(admin=200, clinician=200, patient=200)),
    Route("create_user", "POST", lambda w: "/v1/users", ADMIN_ONLY,
          json=lambda w: {"email": "new.person@example.com", "full_name": "New Person", "role": "clinician",
                          "password": "a long enough secret"}),
    Route("list_users", "GET", lambda w: "/v1/users", by_role(admin=200, clinician=200, patient=403)),
    Route("create_patient", "POST", lambda w: "/v1/patients",
          by_role(admin=201, clinician=201, patient=403),
          json=lambda w: {"full_name": "New Patient", "date_of_birth": "1990-01-01", "timezone": "Europe/Berlin"}),
    Route("list_patients", "GET", lambda w: "/v1/patients",
          by_role(admin=200, clinician=200, patient=403, scope=Scope.patients_read)),
    Route("read_patient", "GET", lambda w: f"/v1/patients/{w.patient.id}", PATIENT_READ),
    Route("update_patient", "PATCH", lambda w: f"/v1/patients/{w.patient.id}", PATIENT_WRITE,
          json=lambda w: {"external_id": "MRN-1"}),
    Route("assign_care_team", "PUT", lambda w: f"/v1/patients/{w.patient.id}/care-team/{w.other_clinician.id}",
          {**CARE_TEAM_WRITE, "admin": 201, "clinician": 201}, json=lambda w: {"role": "monitor"}),
    Route("remove_care_team", "DELETE", lambda w: f"/v1/patients/{w.patient.id}/care-team/{w.clinician.id}",
          {**CARE_TEAM_WRITE, "admin": 204, "clinician": 204}),
    # fresh_patient (care team: clinician) has no login yet, so codes can be issued for it.
    Route("enrollment_code", "POST", lambda w: f"/v1/patients/{w.fresh_patient.id}/enrollment-codes",
          {**PATIENT_WRITE, "admin": 201, "clinician": 201, "monitor": 404, "therapist": 404, "patient_user": 404}),
    Route("audit_events", "GET", lambda w: "/v1/audit-events",
          by_role(admin=200, clinician=403, patient=403)),
    # Account lifecycle and two-factor sign-in (docs/accounts.md). Staff of another organization do not exist for an
    # admin (404); patients' logins are not staff.
    Route("update_user", "PATCH", lambda w: f"/v1/users/{w.other_clinician.id}",
          {**by_role(admin=200, clinician=403, patient=403), "admin_b": 404}, json=lambda w: {"full_name": "Otto R."}),
    Route("change_password", "POST", lambda w: "/v1/me/password", by_role(admin=204, clinician=204, patient=204),
          json=lambda w: {"current_password": PASSWORD, "new_password": "another long enough secret"}),
    Route("start_totp", "POST", lambda w: "/v1/me/mfa/totp", by_role(admin=200, clinician=200, patient=403)),
    # Nothing pending or enabled yet: staff get the state's 409, patients may not enrol at all.
    Route("confirm_totp", "POST", lambda w: "/v1/me/mfa/totp/confirm", by_role(admin=409, clinician=409, patient=403),
          json=lambda w: {"code": "123456"}),
    Route("remove_totp", "DELETE", lambda w: "/v1/me/mfa/totp", by_role(admin=409, clinician=409, patient=403),
          json=lambda w: {"code": "123456"}),
    Route("require_staff_mfa", "PATCH", lambda w: "/v1/organization/settings",
          by_role(admin=200, clinician=403, patient=403), json=lambda w: {"require_staff_mfa": True}),
]


@pytest.mark.parametrize(("route", "caller"), cells(ROUTES), ids=cell_id)
async def test_access(client, world, route, caller):
    await check_route(client, world, route, caller)


@pytest.mark.parametrize("caller", ["admin_b", "clinician_b", "other_clinician", "other_patient_user"])
async def test_patient_of_another_panel_or_organization_is_indistinguishable_from_a_missing_one(
    client, world, caller
):
    import uuid

    headers = world.actor(caller).headers
    hidden = await client.get(f"/v1/patients/{world.patient.id}", headers=headers)
    missing = await client.get(f"/v1/patients/{uuid.uuid4()}", headers=headers)
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json()["detail"] == missing.json()["detail"]
