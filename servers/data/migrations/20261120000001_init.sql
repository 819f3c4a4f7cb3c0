-- The reference service's schema: users and their tasks.
CREATE TYPE task_status AS ENUM ('todo', 'in_progress', 'done', 'cancelled');
CREATE TYPE task_priority AS ENUM ('low', 'medium', 'high', 'critical');

CREATE TABLE users (
    id            uuid        PRIMARY KEY,
    -- Stored lower-cased, so a plain unique constraint is a case-insensitive one.
    email         text        NOT NULL UNIQUE CHECK (email = lower(email)),
    name          text        NOT NULL,
    password_hash text        NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE tasks (
    id          uuid          PRIMARY KEY,
    user_id     uuid          NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    title       text          NOT NULL,
    description text,
    status      task_status   NOT NULL DEFAULT 'todo',
    priority    task_priority NOT NULL DEFAULT 'medium',
    due_at      timestamptz,
    created_at  timestamptz   NOT NULL DEFAULT now(),
    updated_at  timestamptz   NOT NULL DEFAULT now()
);

-- Serves the list query: a user's tasks, newest first, with a stable tie-break.
CREATE INDEX tasks_user_created_idx ON tasks (user_id, created_at DESC, id DESC);
