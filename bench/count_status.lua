-- bench/count_status.lua — counts answers by status, because wrk itself counts a 3xx as a
-- success (a plan page that redirects to step 1 would look fast and fine). Prints
-- "bench-lua: ok=N other=M" (ok = status 200) at the end for the bench scripts to read.
--
-- With BENCH_COOKIES naming a file of "name=value" lines, each request carries the next line
-- as its Cookie header, in turn: many visitors rather than one, whose rows would all stay
-- in every cache. The requests are formatted once, so request() only hands out the next one.
-- (Defined at the top level, where wrk looks for it; without the variable, wrk sends its one
-- static request as before.)
local threads = {}

function setup(thread)
    table.insert(threads, thread)
end

ok = 0
other = 0

local cookies_file = os.getenv("BENCH_COOKIES")
if cookies_file and cookies_file ~= "" then
    local reqs, pos = {}, 0
    for line in io.lines(cookies_file) do
        local headers = {}
        for k, v in pairs(wrk.headers) do
            headers[k] = v
        end
        headers["Cookie"] = line
        reqs[#reqs + 1] = wrk.format(nil, nil, headers)
    end
    assert(#reqs > 0, "no cookies in " .. cookies_file)
    function request()
        pos = pos % #reqs + 1
        return reqs[pos]
    end
end

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
