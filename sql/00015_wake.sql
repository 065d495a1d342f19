-- +goose Up
-- Waking a node's agent. An agent that connects straight to PostgreSQL
-- LISTENs on its own node's channel. One that connects through a
-- transaction pooler cannot LISTEN (its server connection goes back to the
-- pool after every transaction); it long-polls the coordinators instead,
-- which LISTEN on orch_wake and relay the hint (package coordinator). So
-- every wake-up of a node goes both ways: on the node's channel, and on
-- orch_wake with the node's id. PostgreSQL delivers a notification once
-- per transaction however many times it is sent, so a pass placing fifty
-- tasks on a node wakes it once.
-- +goose StatementBegin
CREATE FUNCTION orch_wake_node(node uuid, why text) RETURNS text
    LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM pg_notify('orch_node_' || replace(node::text, '-', ''), why);
    PERFORM pg_notify('orch_wake', node::text);
    RETURN node::text;
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION orch_wake_node(uuid, text);
