-- Prosody 0.12 mod_external_services: TURN/STUN for Jitsi, written by
-- `ferroturn jitsi init` for turn.example.org.
-- Put these lines inside the VirtualHost of your Jitsi domain (Debian:
-- /etc/prosody/conf.avail/<domain>.cfg.lua), add "external_services" to its
-- modules_enabled, remove any older turncredentials*/external_service* settings and
-- restart Prosody. Check: ferroturn jitsi check --conf turnserver.conf prosody-turn.cfg.lua
external_service_secret = "e5336f1d96a61e7bb172a2e1c106c73cb925854d4bd94d54773357d0f4ba426f";
external_services = {
    { type = "stun", host = "turn.example.org", port = 3478, transport = "udp" };
    { type = "turn", host = "turn.example.org", port = 3478, transport = "udp", secret = true, ttl = 86400, algorithm = "turn" };
    { type = "turn", host = "turn.example.org", port = 3478, transport = "tcp", secret = true, ttl = 86400, algorithm = "turn" };
};
