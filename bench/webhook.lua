-- bench/webhook.lua — POSTs pre-signed webhook deliveries (bench/webhook_events.py), each once.
--
--   wrk -s bench/webhook.lua URL -- EVENTS_FILE
--
-- Thread k reads EVENTS_FILE.k (its own share, written by webhook_events.py), formats all its requests in init()
-- so that request() only hands out the next one (the client's cost per request stays that of
-- a static request), and never sends a line twice unless the file runs out: then it starts
-- over and counts each repeat, because a repeated event is a cheap duplicate for usher and
-- would flatter the figure. done() prints one line for the bench script:
--   bench-lua: issued=N ok=N other=N repeats=N loaded=N
local threads = {}
local next_id = 0

function setup(thread)
    thread:set("tid", next_id)
    next_id = next_id + 1
    table.insert(threads, thread)
end

issued, ok, other, repeats, loaded = 0, 0, 0, 0, 0
local reqs = {}
local pos = 0

function init(args)
    assert(args[1], "usage: -- EVENTS_FILE")
    local file = args[1] .. "." .. tid
    for line in io.lines(file) do
        local sig, body = line:match("^([^\t]+)\t(.*)$")
        reqs[#reqs + 1] = wrk.format("POST", nil,
            {["Content-Type"] = "application/json", ["Stripe-Signature"] = sig}, body)
    end
    loaded = #reqs
    assert(loaded > 0, "no events for this thread in " .. file)
end

function request()
    pos = pos + 1
    if pos > loaded then
        pos = 1
    end
    issued = issued + 1
    if issued > loaded then
        repeats = repeats + 1
    end
    return reqs[pos]
end

function response(status, headers, body)
    if status == 200 then
        ok = ok + 1
    else
        other = other + 1
    end
end

function done(summary, latency, requests)
    local t = {issued = 0, ok = 0, other = 0, repeats = 0, loaded = 0}
    for _, th in ipairs(threads) do
        for k in pairs(t) do
            t[k] = t[k] + th:get(k)
        end
    end
    io.write(string.format("bench-lua: issued=%d ok=%d other=%d repeats=%d loaded=%d\n",
        t.issued, t.ok, t.other, t.repeats, t.loaded))
end
