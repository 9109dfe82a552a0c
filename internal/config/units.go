package config

// ByteSize is a size in bytes. In YAML it is written as an integer or with a
// unit: 512, 64KiB, 16MiB, 1GiB (powers of 1024) or 10KB, 5MB, 1GB (powers of
// 1000).
type ByteSize int64
