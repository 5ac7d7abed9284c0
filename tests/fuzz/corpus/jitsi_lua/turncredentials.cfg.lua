turncredentials_secret = [[s3cret]];
turncredentials_ttl = 43200
turncredentials = {
  { type = "stun", host = "10.0.0.1" },
  { type = "turn", host = "10.0.0.1", port = "3478", transport = "tcp" };
}
