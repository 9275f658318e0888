"""The schema, as numbered migrations (search_party.store.db applies them in order, each in its
own transaction).  Append only: a migration that has shipped is never edited, a change is a new
migration."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str
    # A migration that rebuilds a table others refer to runs with foreign keys off (dropping the
    # old table would otherwise cascade into its children); search_party.store.db then checks
    # every foreign key before it commits.
    rebuilds_tables: bool = False


# Clip and sighting ids use AUTOINCREMENT so a deleted id is never reused: the FAISS index and the
# job queue refer to rows by id and must never mistake a new row for a deleted one.
MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "users, cameras, clips, sightings, sighting crops", """
        CREATE TABLE users (
            id INTEGER PRIMARY KEY,
            email TEXT NOT NULL UNIQUE COLLATE NOCASE,
            role TEXT NOT NULL DEFAULT 'resident' CHECK (role IN ('resident', 'shelter', 'admin')),
            created TEXT NOT NULL
        );
        CREATE TABLE cameras (
            id INTEGER PRIMARY KEY,
            owner_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            name TEXT NOT NULL DEFAULT '',
            lat REAL NOT NULL CHECK (lat BETWEEN -90 AND 90),
            lon REAL NOT NULL CHECK (lon BETWEEN -180 AND 180),
            opted_in INTEGER NOT NULL DEFAULT 0 CHECK (opted_in IN (0, 1)),
            opted_in_at TEXT,
            paused INTEGER NOT NULL DEFAULT 0 CHECK (paused IN (0, 1)),
            retention_days INTEGER NOT NULL CHECK (retention_days > 0),
            created TEXT NOT NULL
        );
        CREATE INDEX cameras_owner ON cameras (owner_id);
        CREATE TABLE clips (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            camera_id INTEGER NOT NULL REFERENCES cameras(id) ON DELETE CASCADE,
            sha256 TEXT NOT NULL,
            filename TEXT NOT NULL,
            size_bytes INTEGER NOT NULL,
            spool_name TEXT,
            status TEXT NOT NULL DEFAULT 'queued'
                CHECK (status IN ('queued', 'processing', 'done', 'failed')),
            reason TEXT,
            attempts INTEGER NOT NULL DEFAULT 0,
            claimed_by TEXT,
            claimed_at TEXT,
            start_time TEXT,
            start_source TEXT,
            sightings_count INTEGER,
            stats TEXT,
            created TEXT NOT NULL,
            updated TEXT NOT NULL,
            UNIQUE (camera_id, sha256)
        );
        CREATE INDEX clips_status ON clips (status);
        CREATE TABLE sightings (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            camera_id INTEGER NOT NULL REFERENCES cameras(id) ON DELETE CASCADE,
            clip_id INTEGER NOT NULL REFERENCES clips(id) ON DELETE CASCADE,
            label TEXT NOT NULL CHECK (label IN ('dog', 'cat')),
            first_time TEXT NOT NULL,
            last_time TEXT NOT NULL,
            box_x1 REAL NOT NULL,
            box_y1 REAL NOT NULL,
            box_x2 REAL NOT NULL,
            box_y2 REAL NOT NULL,
            score REAL NOT NULL,
            thumbnail BLOB NOT NULL,
            vector BLOB NOT NULL,
            model_version TEXT NOT NULL,
            created TEXT NOT NULL
        );
        CREATE INDEX sightings_camera_time ON sightings (camera_id, first_time);
        CREATE INDEX sightings_clip ON sightings (clip_id);
        CREATE INDEX sightings_model ON sightings (model_version);
        CREATE TABLE sighting_crops (
            id INTEGER PRIMARY KEY,
            sighting_id INTEGER NOT NULL REFERENCES sightings(id) ON DELETE CASCADE,
            vector BLOB NOT NULL
        );
        CREATE INDEX sighting_crops_sighting ON sighting_crops (sighting_id);
    """),
    # Lost reports are the searches: active until found, expired (renewable) or deleted.
    # ``scored_through`` is the highest sighting id the search has considered, so a standing
    # search that missed a sighting (worker killed after storing it) catches up from SQLite.
    # Matches never hold a camera's place; the consent state decides who may see a sighting.
    # camera_activity has no foreign key to its report: the camera owner's log outlives it.
    Migration(2, "accounts, shelters, lost and found reports, matches, inbox, relay, activity", """
        ALTER TABLE users ADD COLUMN password_hash TEXT;
        ALTER TABLE users ADD COLUMN display_name TEXT NOT NULL DEFAULT '';
        CREATE TABLE shelters (
            user_id INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
            name TEXT NOT NULL,
            lat REAL NOT NULL CHECK (lat BETWEEN -90 AND 90),
            lon REAL NOT NULL CHECK (lon BETWEEN -180 AND 180),
            service_radius_m REAL NOT NULL CHECK (service_radius_m > 0),
            approved_at TEXT,
            approved_by INTEGER REFERENCES users(id) ON DELETE SET NULL,
            created TEXT NOT NULL
        );
        CREATE TABLE password_resets (
            token_sha256 TEXT PRIMARY KEY,
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            expires TEXT NOT NULL,
            used_at TEXT
        );
        CREATE INDEX password_resets_user ON password_resets (user_id);
        CREATE TABLE lost_reports (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            owner_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            pet_name TEXT NOT NULL,
            species TEXT NOT NULL CHECK (species IN ('dog', 'cat')),
            description TEXT NOT NULL DEFAULT '',
            lat REAL NOT NULL CHECK (lat BETWEEN -90 AND 90),
            lon REAL NOT NULL CHECK (lon BETWEEN -180 AND 180),
            last_seen TEXT NOT NULL,
            radius_m REAL NOT NULL CHECK (radius_m > 0),
            status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'found', 'expired')),
            expires TEXT NOT NULL,
            scored_through INTEGER NOT NULL DEFAULT 0,
            submission_key TEXT NOT NULL,
            created TEXT NOT NULL,
            updated TEXT NOT NULL,
            ended TEXT,
            UNIQUE (owner_id, submission_key)
        );
        CREATE INDEX lost_reports_status ON lost_reports (status, expires);
        CREATE TABLE found_reports (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            reporter_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            source TEXT NOT NULL CHECK (source IN ('neighbour', 'shelter')),
            species TEXT NOT NULL CHECK (species IN ('dog', 'cat')),
            description TEXT NOT NULL DEFAULT '',
            lat REAL NOT NULL CHECK (lat BETWEEN -90 AND 90),
            lon REAL NOT NULL CHECK (lon BETWEEN -180 AND 180),
            found_at TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed')),
            expires TEXT NOT NULL,
            submission_key TEXT NOT NULL,
            created TEXT NOT NULL,
            updated TEXT NOT NULL,
            UNIQUE (reporter_id, submission_key)
        );
        CREATE INDEX found_reports_status ON found_reports (status, expires);
        CREATE TABLE report_photos (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            lost_report_id INTEGER REFERENCES lost_reports(id) ON DELETE CASCADE,
            found_report_id INTEGER REFERENCES found_reports(id) ON DELETE CASCADE,
            position INTEGER NOT NULL,
            image BLOB NOT NULL,
            box_x1 REAL NOT NULL,
            box_y1 REAL NOT NULL,
            box_x2 REAL NOT NULL,
            box_y2 REAL NOT NULL,
            label TEXT NOT NULL CHECK (label IN ('dog', 'cat')),
            CHECK ((lost_report_id IS NULL) <> (found_report_id IS NULL))
        );
        CREATE INDEX report_photos_lost ON report_photos (lost_report_id);
        CREATE INDEX report_photos_found ON report_photos (found_report_id);
        CREATE TABLE query_vectors (
            id INTEGER PRIMARY KEY,
            photo_id INTEGER NOT NULL REFERENCES report_photos(id) ON DELETE CASCADE,
            model_version TEXT NOT NULL,
            vector BLOB NOT NULL
        );
        CREATE INDEX query_vectors_photo ON query_vectors (photo_id);
        CREATE TABLE matches (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            lost_report_id INTEGER NOT NULL REFERENCES lost_reports(id) ON DELETE CASCADE,
            sighting_id INTEGER REFERENCES sightings(id) ON DELETE CASCADE,
            camera_id INTEGER REFERENCES cameras(id) ON DELETE CASCADE,
            found_report_id INTEGER REFERENCES found_reports(id) ON DELETE CASCADE,
            score REAL NOT NULL,
            state TEXT NOT NULL DEFAULT 'candidate'
                CHECK (state IN ('candidate', 'asked', 'shared', 'declined', 'expired')),
            created TEXT NOT NULL,
            asked_at TEXT,
            answered_at TEXT,
            updated TEXT NOT NULL,
            CHECK ((sighting_id IS NULL) <> (found_report_id IS NULL)),
            CHECK ((sighting_id IS NULL) = (camera_id IS NULL)),
            UNIQUE (lost_report_id, sighting_id),
            UNIQUE (lost_report_id, found_report_id)
        );
        CREATE INDEX matches_camera_asked ON matches (camera_id, asked_at);
        CREATE INDEX matches_state ON matches (state);
        CREATE INDEX matches_sighting ON matches (sighting_id);
        CREATE INDEX matches_found ON matches (found_report_id);
        CREATE TABLE conversations (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            lost_report_id INTEGER REFERENCES lost_reports(id) ON DELETE CASCADE,
            found_report_id INTEGER REFERENCES found_reports(id) ON DELETE CASCADE,
            owner_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            contact_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            created TEXT NOT NULL,
            CHECK (owner_id <> contact_id),
            CHECK ((lost_report_id IS NULL) <> (found_report_id IS NULL)),
            UNIQUE (lost_report_id, contact_id),
            UNIQUE (found_report_id, contact_id)
        );
        CREATE INDEX conversations_owner ON conversations (owner_id);
        CREATE INDEX conversations_contact ON conversations (contact_id);
        CREATE TABLE messages (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
            sender_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            body TEXT NOT NULL,
            submission_key TEXT NOT NULL,
            created TEXT NOT NULL,
            read_at TEXT,
            UNIQUE (conversation_id, sender_id, submission_key)
        );
        CREATE INDEX messages_conversation ON messages (conversation_id, id);
        CREATE TABLE notifications (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            kind TEXT NOT NULL,
            subject TEXT NOT NULL,
            body TEXT NOT NULL,
            match_id INTEGER REFERENCES matches(id) ON DELETE CASCADE,
            lost_report_id INTEGER REFERENCES lost_reports(id) ON DELETE CASCADE,
            conversation_id INTEGER REFERENCES conversations(id) ON DELETE CASCADE,
            created TEXT NOT NULL,
            read_at TEXT,
            email_status TEXT NOT NULL DEFAULT 'pending'
                CHECK (email_status IN ('pending', 'sent', 'logged', 'failed'))
        );
        CREATE INDEX notifications_user ON notifications (user_id, id);
        CREATE INDEX notifications_email ON notifications (email_status);
        CREATE INDEX notifications_match ON notifications (match_id);
        CREATE TABLE camera_activity (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            camera_id INTEGER NOT NULL REFERENCES cameras(id) ON DELETE CASCADE,
            lost_report_id INTEGER,
            pet_name TEXT NOT NULL,
            species TEXT NOT NULL,
            event TEXT NOT NULL
                CHECK (event IN ('scored', 'asked', 'shared', 'declined', 'expired', 'ended')),
            sightings INTEGER NOT NULL DEFAULT 0,
            likely INTEGER NOT NULL DEFAULT 0,
            at TEXT NOT NULL
        );
        CREATE INDEX camera_activity_camera ON camera_activity (camera_id, at);
    """),
    # The geofence query of search_party.search.matching: cameras by a latitude band, then each fenced
    # camera's sightings ending after the window start, answered from the index alone.
    Migration(3, "geofence indexes: camera latitude, sightings by camera and end time", """
        CREATE INDEX cameras_lat ON cameras (lat);
        CREATE INDEX sightings_fence ON sightings (camera_id, last_time, label, model_version);
    """),
    # Upload tokens for a camera-side uploader (search_party.community.camera_tokens): only a hash is kept.
    Migration(4, "camera upload tokens", """
        CREATE TABLE camera_tokens (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            camera_id INTEGER NOT NULL REFERENCES cameras(id) ON DELETE CASCADE,
            token_sha256 TEXT NOT NULL UNIQUE,
            label TEXT NOT NULL DEFAULT '',
            created TEXT NOT NULL,
            last_used TEXT,
            revoked_at TEXT
        );
        CREATE INDEX camera_tokens_camera ON camera_tokens (camera_id);
    """),
    # Who may write to a lost pet's owner through the relay (search_party.community.contact_preferences).
    Migration(5, "lost report contact preference", """
        CREATE TABLE report_contact (
            lost_report_id INTEGER PRIMARY KEY REFERENCES lost_reports(id) ON DELETE CASCADE,
            open_to TEXT NOT NULL CHECK (open_to IN ('anyone', 'matched'))
        );
    """),
    # Abuse limits (search_party.community.limits): a log of report creations that outlives the reports
    # (deleting a search does not give its daily slot back), and a search's place and radius
    # fixed at creation whatever code asks (a search elsewhere is a new search).
    Migration(6, "abuse limits: rate events; a search's fence is fixed", """
        CREATE TABLE rate_events (
            id INTEGER PRIMARY KEY,
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            kind TEXT NOT NULL CHECK (kind IN ('search', 'found_report', 'shelter_intake')),
            at TEXT NOT NULL
        );
        CREATE INDEX rate_events_user ON rate_events (user_id, kind, at);
        CREATE TRIGGER lost_reports_fence_fixed BEFORE UPDATE OF lat, lon, radius_m ON lost_reports
        WHEN NEW.lat IS NOT OLD.lat OR NEW.lon IS NOT OLD.lon OR NEW.radius_m IS NOT OLD.radius_m
        BEGIN
            SELECT RAISE(ABORT, 'a search keeps the place and radius it was created with; start a new search instead');
        END;
    """),
    # The fence's camera lookup answered from the index alone (no table row per camera in the
    # latitude band): ~40 % less time per search with 6,700 cameras (search-party bench search).
    Migration(7, "geofence camera index covers place and state", """
        DROP INDEX cameras_lat;
        CREATE INDEX cameras_place ON cameras (lat, lon, opted_in, paused);
    """),
    # User ids are never reused (a session, a log line or a backup naming a deleted account must
    # never point at the next one to sign up), and each account carries a session key: every
    # signed-in session holds it, and changing it (password change or reset, account deletion)
    # ends every session of the account on every device (web/access.py).  SQLite cannot add
    # AUTOINCREMENT to a table, so users is rebuilt; its children keep their rows, because the
    # old table is dropped with foreign keys off and every key is checked before the commit.
    Migration(8, "users: ids never reused; a session key per account", """
        CREATE TABLE users_rebuilt (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            email TEXT NOT NULL UNIQUE COLLATE NOCASE,
            role TEXT NOT NULL DEFAULT 'resident' CHECK (role IN ('resident', 'shelter', 'admin')),
            created TEXT NOT NULL,
            password_hash TEXT,
            display_name TEXT NOT NULL DEFAULT '',
            session_key TEXT NOT NULL DEFAULT (lower(hex(randomblob(16))))
        );
        INSERT INTO users_rebuilt (id, email, role, created, password_hash, display_name)
            SELECT id, email, role, created, password_hash, display_name FROM users ORDER BY id;
        DROP TABLE users;
        ALTER TABLE users_rebuilt RENAME TO users;
    """, rebuilds_tables=True),
    # Deleting an account must not give back that day's searches or found reports: its rate
    # events within the day are kept under a digest of its e-mail (search_party.community.limits),
    # so an account made again with the same address counts them; they go after the 24 hours.
    Migration(9, "abuse limits outlive a deleted account", """
        CREATE TABLE erased_rate_events (
            id INTEGER PRIMARY KEY,
            email_sha256 TEXT NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('search', 'found_report', 'shelter_intake')),
            at TEXT NOT NULL
        );
        CREATE INDEX erased_rate_events_email ON erased_rate_events (email_sha256, kind, at);
    """),
    # E-mail that failed is tried again with back-off (search_party.community.notifications).
    Migration(10, "e-mail retries", """
        ALTER TABLE notifications ADD COLUMN email_attempts INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE notifications ADD COLUMN email_next_try TEXT;
    """),
    # Every deleted sighting, in order, so a running server's FAISS index drops exactly what was
    # deleted since it last looked, without reading every id (search_party.store.vector_index).
    Migration(11, "sighting deletion log", """
        CREATE TABLE sighting_deletions (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            sighting_id INTEGER NOT NULL,
            deleted REAL NOT NULL DEFAULT (julianday('now'))
        );
        CREATE INDEX sighting_deletions_deleted ON sighting_deletions (deleted);
        CREATE TRIGGER sightings_deletion_log AFTER DELETE ON sightings BEGIN
            INSERT INTO sighting_deletions (sighting_id) VALUES (OLD.id);
        END;
    """),
    # Species by a classifier (embeddings/species.py), not by COCO's label alone: each sighting
    # keeps P(dog); a search scores its species above a floor.  Sightings stored before it keep
    # their label as a certainty.  The fence index serves the new test as it served the label.
    Migration(12, "sightings keep their species probability", """
        ALTER TABLE sightings ADD COLUMN p_dog REAL NOT NULL DEFAULT 0.5 CHECK (p_dog BETWEEN 0 AND 1);
        UPDATE sightings SET p_dog = CASE label WHEN 'dog' THEN 1.0 ELSE 0.0 END;
        DROP INDEX sightings_fence;
        CREATE INDEX sightings_fence ON sightings (camera_id, last_time, model_version, p_dog);
    """),
    # When a clip was filmed (search_party.community.filming_time): camera file names carry a local
    # time, read in the camera's own zone (its owner sets it; none means "not known").
    Migration(13, "camera time zone", """
        ALTER TABLE cameras ADD COLUMN time_zone TEXT;
    """),
    # Remote ingest workers (search_party/ingest/remote_worker.py) authenticate to the internal
    # API with a token of their own kind, never a camera's upload token: only its sha256 is kept,
    # and the operator revokes it from the shell (`search-party worker-token revoke`).
    Migration(14, "worker tokens for remote ingest workers", """
        CREATE TABLE worker_tokens (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            token_sha256 TEXT NOT NULL UNIQUE,
            label TEXT NOT NULL DEFAULT '',
            created TEXT NOT NULL,
            last_used TEXT,
            revoked_at TEXT
        );
    """),
)
