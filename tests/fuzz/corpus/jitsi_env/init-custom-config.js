// Jitsi Meet web: written by `ferroturn jitsi init` for turn.example.org.
// docker-jitsi-meet: copy to ${CONFIG}/web/custom-config.js (default ~/.jitsi-meet-cfg/web/).
// Debian package: append to /etc/jitsi/meet/<your-domain>-config.js.
// Jitsi drops TURN/UDP servers unless told otherwise; this relay offers UDP,
// the transport media should use whenever the network lets it through.
config.useTurnUdp = true;
