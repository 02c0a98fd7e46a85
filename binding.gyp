{
  "targets": [
    {
      "target_name": "flushpoint_native",
      "sources": ["fs/native/page-cache.c", "fs/native/record-crc.c"],
      "cflags": ["-O2", "-Wall"]
    }
  ]
}
