-- +goose Up
-- Host mounts on nodes with agent roles. An agent started with
-- --allow-host-mounts labels its node orch.allow-host-mounts=true, and the
-- scheduler places tasks with host paths only there (they need an admin's
-- token too). orch_register_node (00011) drops every orch.* label an agent
-- role asks for; now it keeps that one when the admin allowed the node
-- privileges (orch node token NODE --allow-privileged), which host mounts
-- are a part of. The owner's agents (orch dev) are trusted as before.
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION orch_register_node(p_id uuid, p_name text, p_address text, p_labels jsonb,
                                   p_cpu bigint, p_memory bigint, p_disk bigint, p_privileged boolean)
    RETURNS SETOF nodes
    LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
    r agent_roles;
    labels jsonb := COALESCE(p_labels, '{}');
BEGIN
    SELECT * INTO r FROM agent_roles WHERE role_name = session_user;
    IF FOUND THEN
        IF r.node_name <> p_name THEN
            RAISE EXCEPTION 'role % may register node % only, not %', session_user, r.node_name, p_name
                USING ERRCODE = 'insufficient_privilege';
        END IF;
        UPDATE agent_roles SET
            max_cpu_millis   = COALESCE(max_cpu_millis, p_cpu),
            max_memory_bytes = COALESCE(max_memory_bytes, p_memory),
            max_disk_bytes   = COALESCE(max_disk_bytes, p_disk)
        WHERE role_name = session_user
        RETURNING * INTO r;
        p_cpu := least(p_cpu, r.max_cpu_millis);
        p_memory := least(p_memory, r.max_memory_bytes);
        p_disk := least(p_disk, r.max_disk_bytes);
        SELECT COALESCE(jsonb_object_agg(key, value), '{}') INTO labels
        FROM jsonb_each(labels)
        WHERE key NOT LIKE 'orch.%' OR (key = 'orch.allow-host-mounts' AND r.allow_privileged);
        p_privileged := p_privileged AND r.allow_privileged;
    END IF;
    IF p_privileged THEN
        labels := labels || '{"orch.allow-privileged": "true"}';
    ELSE
        labels := labels - 'orch.allow-privileged';
    END IF;
    RETURN QUERY
    INSERT INTO nodes AS n (id, name, address, labels, cpu_millis, memory_bytes, disk_bytes)
    VALUES (p_id, p_name, p_address, labels, p_cpu, p_memory, p_disk)
    ON CONFLICT (name) DO UPDATE SET
        address = EXCLUDED.address, labels = EXCLUDED.labels, cpu_millis = EXCLUDED.cpu_millis,
        memory_bytes = EXCLUDED.memory_bytes, disk_bytes = EXCLUDED.disk_bytes,
        last_heartbeat = now(), updated_at = now()
    RETURNING n.*;
END
$$;
-- +goose StatementEnd

-- +goose Down
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION orch_register_node(p_id uuid, p_name text, p_address text, p_labels jsonb,
                                   p_cpu bigint, p_memory bigint, p_disk bigint, p_privileged boolean)
    RETURNS SETOF nodes
    LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
    r agent_roles;
    labels jsonb := COALESCE(p_labels, '{}');
BEGIN
    SELECT * INTO r FROM agent_roles WHERE role_name = session_user;
    IF FOUND THEN
        IF r.node_name <> p_name THEN
            RAISE EXCEPTION 'role % may register node % only, not %', session_user, r.node_name, p_name
                USING ERRCODE = 'insufficient_privilege';
        END IF;
        UPDATE agent_roles SET
            max_cpu_millis   = COALESCE(max_cpu_millis, p_cpu),
            max_memory_bytes = COALESCE(max_memory_bytes, p_memory),
            max_disk_bytes   = COALESCE(max_disk_bytes, p_disk)
        WHERE role_name = session_user
        RETURNING * INTO r;
        p_cpu := least(p_cpu, r.max_cpu_millis);
        p_memory := least(p_memory, r.max_memory_bytes);
        p_disk := least(p_disk, r.max_disk_bytes);
        SELECT COALESCE(jsonb_object_agg(key, value), '{}') INTO labels
        FROM jsonb_each(labels) WHERE key NOT LIKE 'orch.%';
        p_privileged := p_privileged AND r.allow_privileged;
    END IF;
    IF p_privileged THEN
        labels := labels || '{"orch.allow-privileged": "true"}';
    ELSE
        labels := labels - 'orch.allow-privileged';
    END IF;
    RETURN QUERY
    INSERT INTO nodes AS n (id, name, address, labels, cpu_millis, memory_bytes, disk_bytes)
    VALUES (p_id, p_name, p_address, labels, p_cpu, p_memory, p_disk)
    ON CONFLICT (name) DO UPDATE SET
        address = EXCLUDED.address, labels = EXCLUDED.labels, cpu_millis = EXCLUDED.cpu_millis,
        memory_bytes = EXCLUDED.memory_bytes, disk_bytes = EXCLUDED.disk_bytes,
        last_heartbeat = now(), updated_at = now()
    RETURNING n.*;
END
$$;
-- +goose StatementEnd
