{
  "targets": [
    {
      "target_name": "flushpoint_native",
      "sources": ["fs/native/page-cache.c"],
      "cflags": ["-O2", "-Wall"]
    }
  ]
}
