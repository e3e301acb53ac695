package broker

// ApiVersions (key 18): versions 0–3.
//
//   - Served: the list of (key, min, max) the broker serves, which is the
//     apis table and nothing else, so a client never picks a version we
//     cannot decode. A request at a version above 3 gets UNSUPPORTED_VERSION
//     in a v0 body with the same list (conn.go), so the client retries at 3.
//     The response header is always v0, even for the flexible v3 body.
//   - Left out: supported/finalized features (KIP-584) are empty; the client
//     software name and version (v3) are not validated.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleAPIVersions(_ context.Context, _ *conn, req *kmsg.ApiVersionsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.ApiVersionsResponse)
	resp.ApiKeys = apiVersionKeys()
	return resp
}

// unsupportedAPIVersions is the answer to an ApiVersions request at a
// version we do not serve.
func unsupportedAPIVersions() *kmsg.ApiVersionsResponse {
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.Version = 0
	resp.ErrorCode = kerr.UnsupportedVersion.Code
	resp.ApiKeys = apiVersionKeys()
	return resp
}

func apiVersionKeys() []kmsg.ApiVersionsResponseApiKey {
	keys := make([]kmsg.ApiVersionsResponseApiKey, 0, len(apis))
	for _, a := range apis {
		k := kmsg.NewApiVersionsResponseApiKey()
		k.ApiKey, k.MinVersion, k.MaxVersion = a.key, a.min, a.max
		keys = append(keys, k)
	}
	return keys
}
