-- +goose Up
-- Private registries' logins (orch registry login). The username and the
-- password are sealed together with the cluster's secrets key (package
-- queue/secrets, bound to the server by queue.RegistrySealID); username is
-- kept apart too, to be listed. No answer shows a password. An agent may
-- read a server's row only while its node holds a live task of an image
-- from that server (the one it is about to pull).
CREATE TABLE registry_credentials (
    server     text PRIMARY KEY,
    username   text NOT NULL,
    sealed     bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- The registry an image is pulled from, as queue.ImageRegistry says.
-- +goose StatementBegin
CREATE FUNCTION orch_image_registry(image text) RETURNS text
    LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN strpos(split_part(image, '@', 1), '/') > 0
         AND split_part(split_part(image, '@', 1), '/', 2) <> ''
         AND (split_part(image, '/', 1) ~ '[.:]' OR split_part(image, '/', 1) = 'localhost')
        THEN lower(split_part(image, '/', 1))
        ELSE 'docker.io'
    END
$$;
-- +goose StatementEnd

-- Whether the connected agent's node holds a live task whose image comes
-- from server. Owner's rights, as orch_agent_holds (00011).
-- +goose StatementBegin
CREATE FUNCTION orch_agent_pulls_from(server text) RETURNS boolean
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path FROM CURRENT AS $$
    SELECT EXISTS (SELECT 1 FROM tasks t WHERE t.node_id = orch_agent_node_id()
                                          AND t.state IN ('scheduled', 'starting', 'running')
                                          AND orch_image_registry(t.image) = server)
$$;
-- +goose StatementEnd
REVOKE EXECUTE ON FUNCTION orch_agent_pulls_from(text) FROM PUBLIC;

ALTER TABLE registry_credentials ENABLE ROW LEVEL SECURITY;
CREATE POLICY agent_registry_credentials ON registry_credentials FOR SELECT
    USING (orch_agent_pulls_from(server));
-- +goose StatementBegin
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'orch_agent') THEN
        GRANT SELECT ON registry_credentials TO orch_agent;
        GRANT EXECUTE ON FUNCTION orch_agent_pulls_from(text) TO orch_agent;
    END IF;
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP TABLE registry_credentials;
DROP FUNCTION orch_agent_pulls_from(text);
DROP FUNCTION orch_image_registry(text);
