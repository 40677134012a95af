/// The SQLite schema as an ordered list of migrations; a migration is never edited once released.
enum SQLiteSchema {
    static let migrations: [[String]] = [
        // 1: registrations, deployments, login state, nonces, identities, launches.
        [
            """
            CREATE TABLE platform_registrations (
              id TEXT PRIMARY KEY, issuer TEXT NOT NULL, client_id TEXT NOT NULL,
              auth_url TEXT NOT NULL, token_url TEXT NOT NULL, jwks_url TEXT NOT NULL, created_at REAL NOT NULL,
              UNIQUE (issuer, client_id))
            """,
            """
            CREATE TABLE platform_deployments (
              registration_id TEXT NOT NULL REFERENCES platform_registrations(id) ON DELETE CASCADE,
              deployment_id TEXT NOT NULL, PRIMARY KEY (registration_id, deployment_id))
            """,
            """
            CREATE TABLE login_states (
              state TEXT PRIMARY KEY, nonce TEXT NOT NULL, registration_id TEXT NOT NULL, target_link_uri TEXT NOT NULL,
              created_at REAL NOT NULL, expires_at REAL NOT NULL)
            """,
            "CREATE INDEX login_states_expiry ON login_states (expires_at)",
            """
            CREATE TABLE used_nonces (
              issuer TEXT NOT NULL, nonce TEXT NOT NULL, expires_at REAL NOT NULL, PRIMARY KEY (issuer, nonce))
            """,
            "CREATE INDEX used_nonces_expiry ON used_nonces (expires_at)",
            """
            CREATE TABLE learner_identities (
              id TEXT PRIMARY KEY, issuer TEXT NOT NULL, subject TEXT NOT NULL, given_name TEXT, family_name TEXT,
              email TEXT, first_seen REAL NOT NULL, last_seen REAL NOT NULL, UNIQUE (issuer, subject))
            """,
            """
            CREATE TABLE launches (
              id TEXT PRIMARY KEY, registration_id TEXT NOT NULL, deployment_id TEXT NOT NULL, learner_id TEXT NOT NULL,
              subject TEXT NOT NULL, message_type TEXT NOT NULL, resource_link_id TEXT, context_id TEXT, lab_id TEXT,
              outcome TEXT NOT NULL, vendor_result_code INTEGER, lab_instance_id TEXT, ags_lineitem TEXT,
              created_at REAL NOT NULL)
            """,
            "CREATE INDEX launches_created ON launches (created_at)",
            "CREATE INDEX launches_lab_instance ON launches (lab_instance_id)",
        ],
        // 2: open lab pickers (deep linking).
        [
            """
            CREATE TABLE deep_link_sessions (
              id TEXT PRIMARY KEY, registration_id TEXT NOT NULL, deployment_id TEXT NOT NULL, return_url TEXT NOT NULL,
              data TEXT, accept_multiple INTEGER NOT NULL, accept_lineitem INTEGER NOT NULL,
              created_at REAL NOT NULL, expires_at REAL NOT NULL)
            """,
            "CREATE INDEX deep_link_sessions_expiry ON deep_link_sessions (expires_at)",
        ],
        // 3: launch options per platform registration (JSON).
        [
            "ALTER TABLE platform_registrations ADD COLUMN launch_options TEXT"
        ],
        // 4: SkyPrep options and accounts; the durable job queue.
        [
            "ALTER TABLE platform_registrations ADD COLUMN skyprep_options TEXT",
            """
            CREATE TABLE skyprep_accounts (
              learner_id TEXT PRIMARY KEY, user_id INTEGER NOT NULL, email TEXT NOT NULL, first_name TEXT NOT NULL,
              last_name TEXT NOT NULL, role TEXT NOT NULL, updated_at REAL NOT NULL)
            """,
            "CREATE INDEX skyprep_accounts_user ON skyprep_accounts (user_id)",
            """
            CREATE TABLE jobs (
              kind TEXT NOT NULL, key TEXT NOT NULL, payload TEXT NOT NULL, revision INTEGER NOT NULL, attempts INTEGER NOT NULL,
              next_run_at REAL NOT NULL, held INTEGER NOT NULL, last_error TEXT, locked_by TEXT, locked_until REAL,
              created_at REAL NOT NULL, PRIMARY KEY (kind, key))
            """,
            "CREATE INDEX jobs_due ON jobs (kind, next_run_at)",
        ],
        // 5: what a login was started with (to start it again in a new window) and its platform-storage binding.
        [
            "ALTER TABLE login_states ADD COLUMN login_hint TEXT",
            "ALTER TABLE login_states ADD COLUMN message_hint TEXT",
            "ALTER TABLE login_states ADD COLUMN deployment_hint TEXT",
            "ALTER TABLE login_states ADD COLUMN restart_key TEXT",
            "ALTER TABLE login_states ADD COLUMN storage_digest TEXT",
            "ALTER TABLE login_states ADD COLUMN storage_frame TEXT",
            "ALTER TABLE login_states ADD COLUMN new_window INTEGER NOT NULL DEFAULT 0",
            "CREATE INDEX login_states_restart ON login_states (restart_key)",
        ],
        // 6: a failed job's stable failure code.
        [
            "ALTER TABLE jobs ADD COLUMN failure_code TEXT",
            "UPDATE jobs SET failure_code = 'email_in_use' WHERE last_error LIKE 'email_in_use%'",
        ],
        // 7: deployments keep their order in a column of their own, as in PostgreSQL (it was the rowid).
        [
            "ALTER TABLE platform_deployments ADD COLUMN position INTEGER NOT NULL DEFAULT 0",
            """
            UPDATE platform_deployments SET position = (
              SELECT count(*) FROM platform_deployments earlier
              WHERE earlier.registration_id = platform_deployments.registration_id AND earlier.rowid < platform_deployments.rowid)
            """,
        ],
        // 8: restart keys only for the logins that need one, so the index holds those alone (a write per login less).
        [
            "DROP INDEX login_states_restart",
            "CREATE INDEX login_states_restart ON login_states (restart_key) WHERE restart_key IS NOT NULL",
        ],
        // 9: one row that readiness checks write, so /readyz proves the database takes writes.
        [
            "CREATE TABLE readiness_checks (id INTEGER PRIMARY KEY CHECK (id = 1), checked_at REAL NOT NULL)",
            "INSERT INTO readiness_checks (id, checked_at) VALUES (1, 0)",
        ],
        // 10: learners keyed by the trust anchor (key set) that verified them too. An existing learner takes the key set
        // of the registration of their first launch (else the first registration of their issuer) and keeps their id.
        [
            // The learners' first launches are looked up below: by learner, oldest first (also for records by learner).
            "CREATE INDEX launches_learner ON launches (learner_id, created_at)",
            """
            CREATE TABLE learner_identities_anchored (
              id TEXT PRIMARY KEY, issuer TEXT NOT NULL, trust_anchor TEXT NOT NULL, subject TEXT NOT NULL, given_name TEXT,
              family_name TEXT, email TEXT, first_seen REAL NOT NULL, last_seen REAL NOT NULL, UNIQUE (issuer, trust_anchor, subject))
            """,
            """
            INSERT INTO learner_identities_anchored
              (id, issuer, trust_anchor, subject, given_name, family_name, email, first_seen, last_seen)
            SELECT i.id, i.issuer, COALESCE(
                (SELECT r.jwks_url FROM launches l JOIN platform_registrations r ON r.id = l.registration_id
                 WHERE l.learner_id = i.id ORDER BY l.created_at LIMIT 1),
                (SELECT r.jwks_url FROM platform_registrations r WHERE r.issuer = i.issuer ORDER BY r.created_at LIMIT 1),
                ''),
              i.subject, i.given_name, i.family_name, i.email, i.first_seen, i.last_seen
            FROM learner_identities i
            """,
            "DROP TABLE learner_identities",
            "ALTER TABLE learner_identities_anchored RENAME TO learner_identities",
        ],
        // 11: the too-many-labs page's sessions, server-side (the page carries a random handle; its launch is used once).
        [
            "CREATE TABLE lab_sessions (id TEXT PRIMARY KEY, data TEXT NOT NULL, launch_used INTEGER NOT NULL, expires_at REAL NOT NULL)",
            "CREATE INDEX lab_sessions_expiry ON lab_sessions (expires_at)",
        ],
        // 12: lab starts claimed across instances (one click, one lab, whichever instance it reaches).
        [
            """
            CREATE TABLE lab_starts (
              learner_id TEXT NOT NULL, lab_id TEXT NOT NULL, holder TEXT NOT NULL, outcome TEXT, expires_at REAL NOT NULL,
              PRIMARY KEY (learner_id, lab_id))
            """,
            "CREATE INDEX lab_starts_expiry ON lab_starts (expires_at)",
        ],
        // 13: admin API keys (stored by the digest of their secret), the audit trail, and launches listed by platform.
        [
            """
            CREATE TABLE api_keys (
              id TEXT PRIMARY KEY, name TEXT NOT NULL, scopes TEXT NOT NULL, prefix TEXT NOT NULL, secret_digest TEXT NOT NULL UNIQUE,
              created_by TEXT NOT NULL, created_at REAL NOT NULL, expires_at REAL, last_used_at REAL)
            """,
            """
            CREATE TABLE audit_events (
              id TEXT PRIMARY KEY, actor TEXT NOT NULL, action TEXT NOT NULL, target TEXT NOT NULL, at REAL NOT NULL)
            """,
            "CREATE INDEX audit_events_at ON audit_events (at, id)",
            "CREATE INDEX launches_registration ON launches (registration_id, created_at)",
        ],
        // 14: grade passback — the launch's AGS endpoint and its lab's lifecycle, and the Skillable webhook events handled
        // (each event of a lab instance once).
        [
            "ALTER TABLE launches ADD COLUMN ags_lineitems TEXT",
            "ALTER TABLE launches ADD COLUMN ags_scopes TEXT",
            "ALTER TABLE launches ADD COLUMN lab_state TEXT",
            "ALTER TABLE launches ADD COLUMN completion_status INTEGER",
            "ALTER TABLE launches ADD COLUMN ended_at REAL",
            """
            CREATE TABLE webhook_events (
              event TEXT NOT NULL, lab_instance_id TEXT NOT NULL, received_at REAL NOT NULL, expires_at REAL NOT NULL,
              PRIMARY KEY (event, lab_instance_id))
            """,
            "CREATE INDEX webhook_events_expiry ON webhook_events (expires_at)",
        ],
        // 15: dynamic registration — one-time invitations (stored by the digest of their token), how each registration was
        // made, and registrations waiting for an operator's approval.
        [
            "ALTER TABLE platform_registrations ADD COLUMN origin TEXT",
            "ALTER TABLE platform_registrations ADD COLUMN approved INTEGER NOT NULL DEFAULT 1",
            """
            CREATE TABLE registration_invites (
              id TEXT PRIMARY KEY, token_digest TEXT NOT NULL UNIQUE, note TEXT, created_by TEXT NOT NULL, created_at REAL NOT NULL,
              expires_at REAL NOT NULL, used_at REAL, registration_id TEXT)
            """,
        ],
        // 16: the scopes a platform granted at its dynamic registration, and failed attempts of each invitation.
        [
            "ALTER TABLE platform_registrations ADD COLUMN granted_scopes TEXT",
            "ALTER TABLE registration_invites ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0",
        ],
    ]
}
