-- wrk script: POST /v3.0/{orcid}/employment with a valid body and bearer token.
-- Targets (one "ORCID TOKEN" pair per line) come from $TARGETS (default targets.txt); requests
-- go round-robin over them, and every body carries a unique self external id so ORCID's
-- duplicate rule (409, code 9021) never fires, within a run and across runs.
local targets = {}
for line in io.lines(os.getenv("TARGETS") or "targets.txt") do
  local orcid, token = line:match("(%S+)%s+(%S+)")
  if orcid then
    targets[#targets + 1] = { path = "/v3.0/" .. orcid .. "/employment", auth = "Bearer " .. token }
  end
end

local body = [[{"department-name":"Benchmarks","role-title":"Engineer",]] ..
  [["start-date":{"year":{"value":"2020"},"month":{"value":"01"}},]] ..
  [["organization":{"name":"Boston University","address":{"city":"Boston","region":"Massachusetts","country":"US"},]] ..
  [["disambiguated-organization":{"disambiguated-organization-identifier":"https://ror.org/05qwgg493","disambiguation-source":"ROR"}},]] ..
  [["external-ids":{"external-id":[{"external-id-type":"grant_number","external-id-value":"bench-%s-%d-%d","external-id-relationship":"self"}]}}]]

-- Distinguishes runs against the same simulator ($RUN, else the clock).
local run = os.getenv("RUN") or tostring(os.time())

local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("thread_id", threads)
end

local n = 0
function request()
  n = n + 1
  local t = targets[(n % #targets) + 1]
  return wrk.format("POST", t.path, {
    ["Authorization"] = t.auth,
    ["Content-Type"] = "application/vnd.orcid+json",
    ["Accept"] = "application/vnd.orcid+json",
  }, string.format(body, run, thread_id, n))
end
