-- wrk script: GET /v3.0/{orcid}/record as JSON with a bearer token.
-- $RECORD is "ORCID TOKEN" (one record with a few items).
local orcid, token = os.getenv("RECORD"):match("(%S+)%s+(%S+)")
wrk.method = "GET"
wrk.path = "/v3.0/" .. orcid .. "/record"
wrk.headers["Authorization"] = "Bearer " .. token
wrk.headers["Accept"] = "application/vnd.orcid+json"
