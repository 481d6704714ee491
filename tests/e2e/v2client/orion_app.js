#!/usr/bin/env node
/*
 * An application written for FIWARE Orion (NGSI v2), built on Wirecloud's unmodified `ngsijs`.
 *
 * tests/e2e/test_v2_clients.py runs it against a real `cityos serve`:
 *
 *     node orion_app.js run <broker-url> <notify-url> <fiware-service>
 *     node orion_app.js subscription <broker-url> <subscription-id> <fiware-service>
 *
 * It does what a typical Orion application does (create, query, page, read, update, batch,
 * types, subscribe) and prints one JSON document with what the library reported, so the Python
 * test can assert on the client's view.  Nothing here knows it is talking to CityOS.
 */
"use strict";

const NGSI = require("ngsijs");

const SERVICE_PATH = "/Hyogo/Kobe";

function room(n, temperature, lat, lon) {
    return {
        id: `Room${n}`,
        type: "Room",
        name: {type: "Text", value: `神戸 会議室 ${n}`},
        temperature: {
            type: "Number", value: temperature,
            metadata: {accuracy: {type: "Number", value: n % 2 === 0 ? 0.2 : 0.8},
                       unitCode: {type: "Text", value: "CEL"}},
        },
        location: {type: "geo:point", value: `${lat}, ${lon}`},
        refBuilding: {type: "Relationship", value: "Building7"},
    };
}

/** Run `promise`; answer the ngsijs error class name when it rejects (what an app would catch). */
async function errorName(promise) {
    try {
        await promise;
        return null;
    } catch (error) {
        return error.name || error.constructor.name;
    }
}

async function allPages(v2, query, pageSize) {
    const ids = [];
    for (let offset = 0; ; offset += pageSize) {
        const page = await v2.listEntities({...query, limit: pageSize, offset: offset, count: true});
        ids.push(...page.results.map((e) => e.id));
        if (offset + pageSize >= page.count) {
            return {ids: ids, count: page.count};
        }
    }
}

async function run(brokerUrl, notifyUrl, service) {
    const connection = new NGSI.Connection(brokerUrl, {service: service, servicepath: SERVICE_PATH});
    const v2 = connection.v2;
    const out = {};

    out.version = (await connection.getServerDetails()).details;

    // Create: normalized, keyValues, and a batch of ten more rooms.
    await v2.createEntity(room(1, 23.5, 34.690, 135.195));
    out.createdKeyValues = (await v2.createEntity(
        {id: "Sensor1", type: "Sensor", battery: 87, label: "屋上", enabled: true,
         address: {city: "Kobe", ward: "Chuo"}},
        {keyValues: true})).location;
    out.duplicateCreate = await errorName(v2.createEntity(room(1, 0, 0, 0)));
    const rooms = [];
    for (let n = 2; n <= 11; n++) {
        rooms.push(room(n, 15 + n, 34.690 + n / 100, 135.195));
    }
    await v2.batchUpdate({actionType: "append", entities: rooms});

    // Query: paging with counts, q, mq, georel, orderBy, attrs.
    out.paged = await allPages(v2, {type: "Room", orderBy: "id"}, 4);
    out.warm = (await v2.listEntities({type: "Room", q: "temperature>22", orderBy: "!temperature",
                                       keyValues: true, attrs: "temperature"})).results;
    out.accurate = (await v2.listEntities({type: "Room", mq: "temperature.accuracy<0.5",
                                           count: true, limit: 1})).count;
    out.near = (await v2.listEntities({type: "Room", georel: "near;maxDistance:5000",
                                       geometry: "point", coords: "34.69,135.195",
                                       orderBy: "geo:distance"})).results.map((e) => e.id);
    out.otherPath = (await v2.listEntities({type: "Room", servicepath: "/Osaka", count: true})).count;
    out.subtree = (await v2.listEntities({type: "Room", servicepath: "/Hyogo/#", count: true})).count;

    // Read one entity in several shapes.
    out.room1 = (await v2.getEntity({id: "Room1", type: "Room"})).entity;
    out.room1KeyValues = (await v2.getEntity({id: "Room1", keyValues: true})).entity;
    out.sensorAttrs = (await v2.getEntityAttributes({id: "Sensor1"})).attributes;
    out.temperature = (await v2.getEntityAttribute({id: "Room1", attribute: "temperature"})).attribute;
    out.address = (await v2.getEntityAttributeValue({id: "Sensor1", attribute: "address"})).value;
    out.missing = await errorName(v2.getEntity({id: "NoSuchRoom"}));

    // Change it: update, append (strict), replace one attribute and one value, delete, replace all.
    await v2.updateEntityAttributes({id: "Room1", temperature: {type: "Number", value: 30.5}});
    await v2.appendEntityAttributes({id: "Room1", occupancy: {type: "Integer", value: 12}},
                                    {strict: true});
    out.appendExisting = await errorName(v2.appendEntityAttributes(
        {id: "Room1", occupancy: {type: "Integer", value: 1}}, {strict: true}));
    await v2.replaceEntityAttribute({type: "Text", value: "大会議室"},
                                    {id: "Room1", attribute: "name"});
    await v2.replaceEntityAttributeValue({id: "Sensor1", attribute: "address",
                                          value: {city: "Kobe", ward: "Nada"}});
    await v2.deleteEntityAttribute({id: "Room1", attribute: "refBuilding"});
    out.room1Changed = (await v2.getEntity({id: "Room1", keyValues: true})).entity;
    await v2.replaceEntityAttributes({id: "Sensor1", battery: 50, label: "地下"}, {keyValues: true});
    out.sensorReplaced = (await v2.getEntity({id: "Sensor1", keyValues: true})).entity;

    // Batch: update two rooms, delete one, then query them back with an expression.
    await v2.batchUpdate({actionType: "update", entities: [
        {id: "Room2", type: "Room", temperature: {type: "Number", value: 40}},
        {id: "Room3", type: "Room", temperature: {type: "Number", value: 41}},
    ]});
    await v2.batchUpdate({actionType: "delete", entities: [{id: "Room11", type: "Room"}]});
    const hot = await v2.batchQuery({entities: [{idPattern: "^Room", type: "Room"}],
                                     attrs: ["temperature"],
                                     expression: {q: "temperature>=30"}},
                                    {keyValues: true, count: true, orderBy: "id"});
    out.batchHot = {count: hot.count, results: hot.results};

    // Types.
    const types = await v2.listTypes({count: true});
    out.types = {count: types.count, names: types.results.map((t) => t.type).sort()};
    out.roomType = (await v2.getType({id: "Room"})).type;

    // Subscribe, then make a change that matches (the test's receiver gets the notification).
    const sub = await v2.createSubscription({
        description: "暑い部屋 / hot rooms",
        subject: {entities: [{idPattern: ".*", type: "Room"}],
                  condition: {attrs: ["temperature"], expression: {q: "temperature>35"}}},
        notification: {http: {url: notifyUrl}, attrs: ["temperature", "name"],
                       attrsFormat: "keyValues"},
        throttling: 0,
    });
    out.subscriptionId = sub.subscription.id;
    out.subscriptions = (await v2.listSubscriptions({count: true})).count;
    await v2.updateEntityAttributes({id: "Room4", temperature: {type: "Number", value: 20}});
    await v2.updateEntityAttributes({id: "Room5", temperature: {type: "Number", value: 38.5}});

    // Delete.
    await v2.deleteEntity({id: "Room10", type: "Room"});
    out.afterDelete = (await v2.listEntities({type: "Room", count: true, limit: 1})).count;
    return out;
}

async function subscriptionStatus(brokerUrl, subscriptionId, service) {
    const connection = new NGSI.Connection(brokerUrl, {service: service, servicepath: SERVICE_PATH});
    const subscription = (await connection.v2.getSubscription({id: subscriptionId})).subscription;
    await connection.v2.deleteSubscription({id: subscriptionId});
    const gone = await errorName(connection.v2.getSubscription({id: subscriptionId}));
    return {subscription: subscription, afterDelete: gone};
}

async function main() {
    const [mode, brokerUrl, arg, service] = process.argv.slice(2);
    const result = mode === "run"
        ? await run(brokerUrl, arg, service)
        : await subscriptionStatus(brokerUrl, arg, service);
    process.stdout.write(JSON.stringify(result) + "\n");
}

main().catch((error) => {
    process.stderr.write(`orion_app failed: ${error.name}: ${error.message}\n${error.stack}\n`);
    process.exit(1);
});
