package chatv1

import _ "embed"

// OpenAPI is the OpenAPI (Swagger 2.0) document of the REST routes, generated
// by `make proto` from chat.proto and chat_http.yaml.
//
//go:embed tertulia.swagger.json
var OpenAPI []byte
