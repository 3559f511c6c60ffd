-- Calmtrack at the floor's scale (../shared/bench/floor/seed.sql), seeded the same way:
--   psql DATABASE -v patients=2000 -v panel=500 -v days=365 \
--        -v organization=UUID -v clinician=UUID -v patient_user=UUID -f bench/seed.sql
-- into a database migrated with `calmtrack migrate` (so every index is the migrations' own). :patients patients
-- with :days daily GAD-7 scores each; clinician :clinician has the first :panel patients on their care team;
-- :patient_user is the login of the last patient (id 0x…07d0 at 2,000 patients), who posts scores in the ingest
-- scenario. Every patient also has what the chart and the dashboard read: an active treatment plan that started
-- :days - 1 days ago (weekly GAD-7, created as a draft then activated: two revisions) and four signed iv ketamine
-- sessions in the plan's induction phase (every 3 days from its start, no warnings). The plan and session JSON is
-- what the API stores for a valid PlanCreate / SessionCreate (bench/run.py checks it against those models after
-- seeding). A progress line per step goes to stderr.
\set ON_ERROR_STOP on
set synchronous_commit = off;  -- a crash mid-seed means seeding again anyway
set client_min_messages = warning;

-- "seeding <step>… <n> rows in <s> s" (or "done") for the statement just run, and the clock restarted for the next one.
select set_config('bench.step_started', clock_timestamp()::text, false) as started \gset
create function pg_temp.progress(step text, n bigint) returns text language plpgsql as $$
declare
  took numeric := extract(epoch from clock_timestamp() - current_setting('bench.step_started')::timestamptz);
begin
  perform set_config('bench.step_started', clock_timestamp()::text, false);
  return format('seeding %s… %s in %s s', step,
                coalesce(to_char(n, 'FM999,999,999,990') || ' rows', 'done'), round(took, 1));
end $$;

insert into organization (id, name, created_at) values (:'organization', 'Bench Clinic', now());

insert into app_user (id, organization_id, email, full_name, role, password_hash, patient_id, is_active, created_at)
values (:'clinician', :'organization', 'clinician@bench.example', 'Bench Clinician', 'clinician', '!', null, true, now());

insert into patient (id, organization_id, full_name, date_of_birth, timezone, email, external_id, created_at, updated_at)
select ('00000000-0000-0000-0000-' || lpad(to_hex(g), 12, '0'))::uuid, :'organization', 'patient ' || lpad(g::text, 6, '0'),
       date '1980-01-01' + (g % 9000), 'America/New_York', null, null, now(), now()
  from generate_series(1, :patients) g;
select pg_temp.progress('patients', :ROW_COUNT) as msg \gset
\warn :msg

insert into care_team_member (patient_id, user_id, role, added_at)
select id, :'clinician', 'prescriber', now() from patient order by id limit :panel;
select pg_temp.progress('care team', :ROW_COUNT) as msg \gset
\warn :msg

insert into app_user (id, organization_id, email, full_name, role, password_hash, patient_id, is_active, created_at)
select :'patient_user', :'organization', 'patient@bench.example', full_name, 'patient', '!', id, true, now()
  from patient order by id desc limit 1;

-- Plans: started :days - 1 days ago (the day of the oldest score), assessed a week before, created then and
-- activated on the start date. The JSON is PlanCreate.model_dump(mode="json"): every field, defaults included.
insert into treatment_plan (id, patient_id, status, revision, title, indication, start_date, protocol, goals,
                            adjunct_therapies, assessments, safety, prior_treatments, suitability,
                            created_by, created_at, updated_by, updated_at)
select gen_random_uuid(), p.id, 'active', 2, 'Ketamine-assisted treatment for GAD',
       'Generalized anxiety disorder, treatment-resistant', x.start_date,
       '{"medication": "ketamine", "route": "iv", "dose": {"unit": "mg/kg", "amount": 0.5}, "infusion_minutes": 40,
         "phases": [{"name": "induction", "sessions": 6, "interval_days": 3},
                    {"name": "maintenance", "sessions": 4, "interval_days": 28}]}'::json,
       json_build_array(json_build_object('description', 'Remission of anxiety', 'instrument', 'gad7',
                                          'target_total', 4, 'by_date', (x.start_date + 120)::text)),
       '[{"kind": "cbt", "frequency": "weekly", "provider": "Dr. Rivera"}]'::json,
       '[{"instrument": "gad7", "every_days": 7}]'::json,
       '{"max_systolic": 160, "max_diastolic": 100}'::json,
       '[{"name": "sertraline", "kind": "ssri", "adequate_trial": true, "outcome": "no_response"},
         {"name": "venlafaxine", "kind": "snri", "adequate_trial": true, "outcome": "partial_response"}]'::json,
       json_build_object('assessed_at', (x.start_date - 7)::text, 'contraindications', json_build_array(),
                         'notes', 'BP controlled; no psychosis history'),
       :'clinician', x.start_date - 7 + time '15:00', :'clinician', x.start_date + time '14:00'
  from patient p, (select current_date - (:days - 1) as start_date) x;
select pg_temp.progress('plans', :ROW_COUNT) as msg \gset
\warn :msg

-- Their history: revision 1 holds every initial value (status draft), revision 2 the activation.
insert into plan_revision (plan_id, revision, kind, changed_by, changed_at, changes, reason, override_reason,
                           overridden_contraindications)
select t.id, 1, 'create', t.created_by, t.created_at,
       json_build_array(
         json_build_object('field', 'title', 'before', null, 'after', t.title),
         json_build_object('field', 'indication', 'before', null, 'after', t.indication),
         json_build_object('field', 'start_date', 'before', null, 'after', t.start_date::text),
         json_build_object('field', 'protocol', 'before', null, 'after', t.protocol),
         json_build_object('field', 'goals', 'before', null, 'after', t.goals),
         json_build_object('field', 'adjunct_therapies', 'before', null, 'after', t.adjunct_therapies),
         json_build_object('field', 'assessments', 'before', null, 'after', t.assessments),
         json_build_object('field', 'safety', 'before', null, 'after', t.safety),
         json_build_object('field', 'prior_treatments', 'before', null, 'after', t.prior_treatments),
         json_build_object('field', 'suitability', 'before', null, 'after', t.suitability)),
       null, null, null::json
  from treatment_plan t
union all
select t.id, 2, 'status', t.updated_by, t.updated_at,
       '[{"field": "status", "before": "draft", "after": "active"}]'::json, 'Suitability assessed', null, null
  from treatment_plan t;
select pg_temp.progress('plan revisions', :ROW_COUNT) as msg \gset
\warn :msg

-- Four signed sessions per patient on days 0, 3, 6 and 9 of the plan, dosing at 14:00 UTC (morning in New York):
-- 0.5 mg/kg × 70 kg = 35 mg as planned, blood pressure below the plan's 160/100 before and after, discharged
-- with the criteria met, so no warnings (the server would compute none). Created as drafts (revision 1), signed
-- 15 minutes after the session ended (revision 2).
insert into dosing_session (id, patient_id, status, revision, plan_id, unplanned_reason, supervising_clinician_id,
                            started_at, ended_at, medication, route, dose_mg, weight_kg, vitals, dissociation_cadss,
                            sedation_moaas, pre_suds, post_suds, adverse_events, notes, discharge, warnings,
                            has_warnings, created_by, created_at, updated_by, updated_at, signed_by, signed_at)
select gen_random_uuid(), s.patient_id, 'signed', 2, s.plan_id, null, :'clinician',
       s.started_at, s.started_at + interval '2 hours', 'ketamine', 'iv', 35.0, 70.0,
       json_build_array(
         json_build_object('at', to_char((s.started_at - interval '5 minutes') at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                           'phase', 'pre', 'systolic', 128, 'diastolic', 82, 'heart_rate', 74, 'spo2', 98,
                           'respiratory_rate', null),
         json_build_object('at', to_char((s.started_at + interval '60 minutes') at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                           'phase', 'post', 'systolic', 134, 'diastolic', 86, 'heart_rate', 80, 'spo2', 97,
                           'respiratory_rate', null)),
       18, 5, 70, 30, '[]'::json, 'Tolerated well; no adverse events',
       json_build_object('at', to_char((s.started_at + interval '2 hours') at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                         'criteria_met', true, 'accompanied_by', 'a family member'),
       '[]'::json, false, :'clinician', s.started_at - interval '10 minutes',
       :'clinician', s.started_at + interval '135 minutes', :'clinician', s.started_at + interval '135 minutes'
  from (select t.patient_id, t.id as plan_id, (t.start_date + 3 * k + time '14:00') at time zone 'UTC' as started_at
          from treatment_plan t, generate_series(0, 3) k) s;
select pg_temp.progress('dosing sessions', :ROW_COUNT) as msg \gset
\warn :msg

-- Scores exactly as the floor's: one a day per patient for :days days up to now, slowly improving with noise.
-- Millions of rows go in faster without maintaining three b-trees (one on random uuids) and two foreign-key checks
-- per row: the score table's indexes and constraints are dropped and then rebuilt from their own definitions
-- (pg_get_indexdef / pg_get_constraintdef), so the schema ends exactly as the migrations made it.
create temporary table score_schema as
select 1 as step, format('alter table score add constraint %I %s', conname, pg_get_constraintdef(oid)) as ddl,
       format('alter table score drop constraint %I', conname) as undo
  from pg_constraint where conrelid = 'score'::regclass and contype in ('p', 'f')
union all
select 2, pg_get_indexdef(indexrelid), format('drop index %I', indexrelid::regclass::text)
  from pg_index where indrelid = 'score'::regclass
   and indexrelid not in (select conindid from pg_constraint where conrelid = 'score'::regclass);
do $$ declare r record; begin
  for r in select undo from score_schema order by step desc loop execute r.undo; end loop;
end $$;

insert into score (id, patient_id, instrument, items, total, severity, recorded_at, recorded_offset_minutes,
                   received_at, source, entered_by, note, updated_at, deleted_at)
select gen_random_uuid(), x.patient_id, 'gad7', '[1,1,1,1,1,1,1]'::json, x.total,
       case when x.total >= 15 then 'severe' when x.total >= 10 then 'moderate' when x.total >= 5 then 'mild'
            else 'minimal' end,
       x.at, -300, x.at, 'clinician', :'clinician', null, x.at, null
  from (select p.id as patient_id, greatest(0, least(21, 16 - (d / 40) + (random() * 4)::int)) as total,
               now() - make_interval(days => d) as at
          from patient p, generate_series(0, :days - 1) d) x;
select pg_temp.progress('scores', :ROW_COUNT) as msg \gset
\warn :msg

set maintenance_work_mem = '256MB';
do $$ declare r record; begin
  for r in select ddl from score_schema order by step loop execute r.ddl; end loop;
end $$;
select pg_temp.progress('score indexes and constraints', (select count(*) from score_schema)) as msg \gset
\warn :msg

analyze;
select pg_temp.progress('analyze', null) as msg \gset
\warn :msg
