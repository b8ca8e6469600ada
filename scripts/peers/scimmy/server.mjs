// A SCIM 2.0 service provider for scimsync's `generic` end-to-end tests, built on SCIMMY
// (npm: scimmy, scimmy-routers; not written here, and not scim2-server): SCIMMY parses and
// validates requests, evaluates filters, applies PatchOps and serves /Schemas, /ResourceTypes
// and /ServiceProviderConfig. This file only stores the resources, in memory, per tenant.
//
// How it differs from scim2-server, on purpose (RFC-conformant choices a real SP makes):
// - userName is unique case-insensitively (its schema says caseExact false: 409 uniqueness),
//   but SCIMMY's filter compares strings exactly: `userName eq "ann@x.com"` misses "Ann@x.com";
// - no enterprise extension is declared: such attributes are dropped on create (201) and a
//   PATCH naming one is refused with 400 invalidPath;
// - pages of at most 20 (filter.maxResults), no ETags, PATCH answers 200 or 204.
//
// Usage: node server.mjs PORT TOKEN. Tenants: /<tenant>/v2 (created on first use), so tests
// run in parallel without seeing each other. Test-only extras, behind the same token:
// GET /<tenant>/_log lists every SCIM request the tenant received (method, path, query,
// body, status), so a test can prove what was (not) sent.
import express from "express";
import {randomUUID} from "node:crypto";
import SCIMMYRouters, {SCIMMY} from "scimmy-routers";

const [port, token] = process.argv.slice(2);
if (!port || !token) {
    console.error("usage: node server.mjs PORT TOKEN");
    process.exit(2);
}
const PAGE = 20;
const tenants = new Map();
const tenant = (name) => {
    if (!tenants.has(name)) tenants.set(name, {users: new Map(), groups: new Map(), log: []});
    return tenants.get(name);
};
const now = () => new Date().toISOString();
const stamp = (record, resourceType) => {
    const version = (record.meta?.revision ?? 0) + 1;
    const created = record.meta?.created ?? now();
    record.meta = {resourceType, created, lastModified: now(), revision: version, version: `W/"${version}"`};
    return record;
};
const out = (record) => {
    const {meta: {revision, ...meta}, ...rest} = structuredClone(record);
    return {...rest, meta};
};
const conflict = (detail) => new SCIMMY.Types.Error(409, "uniqueness", detail);
const notFound = (id) => new SCIMMY.Types.Error(404, null, `Resource ${id} not found`);

// A list read: SCIMMY's filter (exact string comparison), then at most PAGE per page.
const list = (store, resource) => {
    const all = [...store.values()].map(out);
    const matched = resource.filter ? resource.filter.match(all) : all;
    resource.constraints = {...(resource.constraints ?? {}), count: Math.min(resource.constraints?.count ?? PAGE, PAGE)};
    return matched;
};

SCIMMY.Resources.declare(SCIMMY.Resources.User)
    .egress((resource, ctx) => {
        const {users} = tenant(ctx);
        if (resource.id) {
            const user = users.get(resource.id);
            if (!user) throw notFound(resource.id);
            return out(user);
        }
        return list(users, resource);
    })
    .ingress((resource, instance, ctx) => {
        const {users} = tenant(ctx);
        const data = JSON.parse(JSON.stringify(instance));
        const name = String(data.userName ?? "").toLowerCase();
        for (const [id, user] of users) {
            if (id !== resource.id && String(user.userName).toLowerCase() === name)
                throw conflict(`userName '${data.userName}' is already taken`);
        }
        if (resource.id) {
            const current = users.get(resource.id);
            if (!current) throw notFound(resource.id);
            const next = stamp({...data, id: resource.id, meta: current.meta}, "User");
            users.set(resource.id, next);
            return out(next);
        }
        const id = randomUUID();
        const user = stamp({...data, id}, "User");
        users.set(id, user);
        return out(user);
    })
    .degress((resource, ctx) => {
        const {users, groups} = tenant(ctx);
        if (!users.delete(resource.id)) throw notFound(resource.id);
        for (const group of groups.values()) {
            const before = group.members?.length ?? 0;
            group.members = (group.members ?? []).filter((m) => m.value !== resource.id);
            if (group.members.length !== before) stamp(group, "Group");
        }
    });

SCIMMY.Resources.declare(SCIMMY.Resources.Group)
    .egress((resource, ctx) => {
        const {groups} = tenant(ctx);
        if (resource.id) {
            const group = groups.get(resource.id);
            if (!group) throw notFound(resource.id);
            return out(group);
        }
        return list(groups, resource);
    })
    .ingress((resource, instance, ctx) => {
        const {users, groups} = tenant(ctx);
        const data = JSON.parse(JSON.stringify(instance));
        for (const member of data.members ?? []) {
            if (!users.has(member.value))
                throw new SCIMMY.Types.Error(400, "invalidValue", `member '${member.value}' is not a user`);
        }
        for (const [id, group] of groups) {
            if (id !== resource.id && group.displayName === data.displayName)
                throw conflict(`displayName '${data.displayName}' is already taken`);
        }
        if (resource.id) {
            const current = groups.get(resource.id);
            if (!current) throw notFound(resource.id);
            const next = stamp({...data, id: resource.id, meta: current.meta}, "Group");
            groups.set(resource.id, next);
            return out(next);
        }
        const id = randomUUID();
        const group = stamp({...data, id}, "Group");
        groups.set(id, group);
        return out(group);
    })
    .degress((resource, ctx) => {
        if (!tenant(ctx).groups.delete(resource.id)) throw notFound(resource.id);
    });

const authorized = (req) => req.header("Authorization") === `Bearer ${token}`;
const app = express();
app.get("/:tenant/_log", (req, res) => {
    if (!authorized(req)) return res.status(401).json({detail: "unauthorized"});
    res.json(tenant(req.params.tenant).log);
});
// Records each SCIM request and its status, for the tests.
app.use("/:tenant/v2", express.json({type: ["application/scim+json", "application/json"]}), (req, res, next) => {
    const entry = {method: req.method, path: req.path, query: req.query, body: req.body ?? null};
    res.on("finish", () => {
        entry.status = res.statusCode;
        if (authorized(req)) tenant(req.params.tenant).log.push(entry);
    });
    next();
});
const routers = new SCIMMYRouters({
    type: "bearer",
    handler: (req) => {
        if (!authorized(req)) throw new Error("the bearer token is not valid");
        return "scimsync";
    },
    context: (req) => req.params.tenant,
});
SCIMMY.Config.set({etag: {supported: false}, filter: {supported: true, maxResults: PAGE}, bulk: {supported: false}});
app.use("/:tenant/v2", routers);
app.listen(Number(port), "127.0.0.1", () => console.log(`scimmy peer on 127.0.0.1:${port}`));
