-- Calmtrack at the floor's scale (../shared/bench/floor/seed.sql): :patients patients with :days daily GAD-7
-- scores each; clinician :clinician has the first :panel patients on their care team; :patient_user is the
-- login of the last patient (id 0x…07d0 at the default scale), who posts scores in the ingest scenario.
insert into organization (id, name, created_at) values (:'organization', 'Bench Clinic', now());

insert into app_user (id, organization_id, email, full_name, role, password_hash, patient_id, is_active, created_at)
values (:'clinician', :'organization', 'clinician@bench.example', 'Bench Clinician', 'clinician', '!', null, true, now());

insert into patient (id, organization_id, full_name, date_of_birth, timezone, email, external_id, created_at, updated_at)
select ('00000000-0000-0000-0000-' || lpad(to_hex(g), 12, '0'))::uuid, :'organization', 'patient ' || lpad(g::text, 6, '0'),
       date '1980-01-01' + (g % 9000), 'America/New_York', null, null, now(), now()
  from generate_series(1, :patients) g;

insert into care_team_member (patient_id, user_id, role, added_at)
select id, :'clinician', 'prescriber', now() from patient order by id limit :panel;

insert into app_user (id, organization_id, email, full_name, role, password_hash, patient_id, is_active, created_at)
select :'patient_user', :'organization', 'patient@bench.example', full_name, 'patient', '!', id, true, now()
  from patient order by id desc limit 1;

insert into score (id, patient_id, instrument, items, total, severity, recorded_at, recorded_offset_minutes,
                   received_at, source, entered_by, note, updated_at, deleted_at)
select gen_random_uuid(), x.patient_id, 'gad7', '[1,1,1,1,1,1,1]'::json, x.total,
       case when x.total >= 15 then 'severe' when x.total >= 10 then 'moderate' when x.total >= 5 then 'mild'
            else 'minimal' end,
       x.at, -300, x.at, 'clinician', :'clinician', null, x.at, null
  from (select p.id as patient_id, greatest(0, least(21, 16 - (d / 40) + (random() * 4)::int)) as total,
               now() - make_interval(days => d) as at
          from patient p, generate_series(0, :days - 1) d) x;
analyze;
