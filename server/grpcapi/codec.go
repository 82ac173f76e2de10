package grpcapi

import (
	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
)

// encodedFrame is a ServerFrame already marshalled, shared by every stream it
// is sent on. The codec passes its bytes through untouched.
type encodedFrame struct{ b []byte }

// codec is the server's "proto" codec: protobuf for every message, except an
// encodedFrame, which is already protobuf.
type codec struct{ encoding.CodecV2 }

func (c codec) Marshal(v any) (mem.BufferSlice, error) {
	if f, ok := v.(*encodedFrame); ok {
		return mem.BufferSlice{mem.SliceBuffer(f.b)}, nil
	}
	return c.CodecV2.Marshal(v)
}

// ServerCodec is the server option that installs the codec. Every gRPC
// server that registers the ChatService must use it.
func ServerCodec() grpc.ServerOption {
	return grpc.ForceServerCodecV2(codec{encoding.GetCodecV2(proto.Name)})
}
