-- bench/count_status.lua — counts answers by status, because wrk itself counts a 3xx as a
-- success (a plan page that redirects to step 1 would look fast and fine). Prints
-- "bench-lua: ok=N other=M" (ok = status 200) at the end for the bench scripts to read.
local threads = {}

function setup(thread)
    table.insert(threads, thread)
end

ok = 0
other = 0

function response(status, headers, body)
    if status == 200 then
        ok = ok + 1
    else
        other = other + 1
    end
end

function done(summary, latency, requests)
    local o, x = 0, 0
    for _, t in ipairs(threads) do
        o = o + t:get("ok")
        x = x + t:get("other")
    end
    io.write(string.format("bench-lua: ok=%d other=%d\n", o, x))
end
