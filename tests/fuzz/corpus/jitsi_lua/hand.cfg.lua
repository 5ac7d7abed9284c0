external_service_secret = "s3cret"
external_services = {
  { type = "stun", host = "turn.example.org", port = 3478 },
  { type = "turn", host = "turn.example.org", port = 3478, transport = "udp", secret = true, ttl = 86400, algorithm = "turn" },
  { type = "turns", host = "turn.example.org", port = 5349, transport = "tcp", secret = true },
}
-- comment
--[[ long
comment ]]
VirtualHost "meet.example.org"
    modules_enabled = { "external_services" }
