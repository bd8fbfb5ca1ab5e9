// Package blobstore opens the gocloud.dev/blob buckets omnibus keeps recordings and media in, the
// one way every service does, so that an object's URL (Base + "/" + key) written by one service
// names the same object for another: a local directory in the all-in-one (file://), S3 or an
// S3-compatible store (Aliyun OSS, MinIO) in production. Drivers other than file:// and mem://
// are registered by the binary (a blank import of gocloud.dev/blob/s3blob).
package blobstore

import (
	"context"
	"errors"
	"net/url"
	"path/filepath"
	"strings"

	"gocloud.dev/blob"
	"gocloud.dev/blob/fileblob"
	_ "gocloud.dev/blob/memblob" // mem:// buckets for tests
)

// Open opens the bucket at u and returns it with its base: u without its query, and for file://
// the absolute directory (a relative file://dir is taken from the working directory and created).
func Open(ctx context.Context, u string) (b *blob.Bucket, base string, err error) {
	base, _, _ = strings.Cut(u, "?")
	if dir, ok := strings.CutPrefix(base, "file://"); ok {
		abs, err := filepath.Abs(dir)
		if err != nil {
			return nil, "", err
		}
		b, err := fileblob.OpenBucket(abs, &fileblob.Options{CreateDir: true, Metadata: fileblob.MetadataDontWrite})
		return b, "file://" + filepath.ToSlash(abs), err
	}
	b, err = blob.OpenBucket(ctx, u)
	return b, strings.TrimSuffix(base, "/"), err
}

// ErrNotInBucket is returned by Key for an object URL outside the bucket.
var ErrNotInBucket = errors.New("blobstore: the URL names no object of this bucket")

// Key returns the key of the object at objectURL (Base + "/" + key) in the bucket of base. It
// refuses URLs outside the bucket and keys that climb out of it ("..").
func Key(base, objectURL string) (string, error) {
	key, ok := strings.CutPrefix(objectURL, base+"/")
	if !ok || key == "" {
		return "", ErrNotInBucket
	}
	if k, err := url.PathUnescape(key); err == nil {
		key = k
	}
	for _, part := range strings.Split(key, "/") {
		if part == "" || part == "." || part == ".." {
			return "", ErrNotInBucket
		}
	}
	return key, nil
}
