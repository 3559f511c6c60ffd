"""Staff accounts."""

NEW_CLINICIAN = {"email": "Rivera@Calm.Example", "full_name": "Dr. Rivera", "role": "clinician",
                 "password": "a long enough secret"}


async def test_admin_creates_clinician_who_can_log_in(client, world):
    response = await client.post("/v1/users", json=NEW_CLINICIAN, headers=world.admin.headers)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["email"] == "rivera@calm.example"
    assert body["organization_id"] == str(world.org_a.id)
    assert "password" not in body and "password_hash" not in body
    login = await client.post("/v1/auth/login", json={"email": "rivera@calm.example",
                                                       "password": NEW_CLINICIAN["password"]})
    assert login.status_code == 200


async def test_duplicate_email_is_409_across_organizations(client, world):
    assert (await client.post("/v1/users", json=NEW_CLINICIAN, headers=world.admin.headers)).status_code == 201
    again = await client.post("/v1/users", json={**NEW_CLINICIAN, "email": "RIVERA@calm.example"},
                              headers=world.admin_b.headers)
    assert again.status_code == 409
    assert again.json()["code"] == "email_taken"


async def test_patient_logins_cannot_be_created_here(client, world):
    response = await client.post("/v1/users", json={**NEW_CLINICIAN, "role": "patient"}, headers=world.admin.headers)
    assert response.status_code == 422


async def test_organization_cannot_be_chosen_by_the_caller(client, world):
    response = await client.post("/v1/users", json={**NEW_CLINICIAN, "organization_id": str(world.org_b.id)},
                                 headers=world.admin.headers)
    assert response.status_code == 422


async def test_staff_list_is_per_organization_and_filterable(client, world):
    everyone = (await client.get("/v1/users", headers=world.clinician.headers)).json()["items"]
    assert [u["full_name"] for u in everyone] == ["Ada Admin", "Cleo Clinician", "Mo Monitor", "Otto Other",
                                                      "Tess Therapist"]
    clinicians = (await client.get("/v1/users", params={"role": "clinician"}, headers=world.admin_b.headers)).json()
    assert [u["full_name"] for u in clinicians["items"]] == ["Ben Clinician"]
