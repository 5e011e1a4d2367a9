-- wrk script: POST the JSON body held in the file named by WRK_BODY_FILE (read once).
local path = assert(os.getenv("WRK_BODY_FILE"), "set WRK_BODY_FILE")
local file = assert(io.open(path, "rb"))
wrk.method = "POST"
wrk.body = file:read("*a")
file:close()
wrk.headers["Content-Type"] = "application/json"
