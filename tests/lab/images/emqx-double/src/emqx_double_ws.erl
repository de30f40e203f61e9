%% emqx-double (a test double of EMQX 4.4.4, not EMQX): the WebSocket layer
%% of the MQTT listeners listener.ws.<name> and listener.wss.<name>.
%%
%% 4.4.4 serves them with cowboy and emqx_ws_connection; the double answers
%% the same way for what a client sees:
%% * a path other than mqtt_path (default /mqtt) gets 404;
%% * Sec-WebSocket-Protocol: the first offered subprotocol that is in
%%   supported_subprotocols (default "mqtt, mqtt-v3, mqtt-v3.1.1, mqtt-v5") is
%%   echoed; none of them gets 400; no header at all gets 400 while
%%   fail_if_no_subprotocol is true (the default);
%% * a request that is not a WebSocket upgrade gets 400;
%% * else 101 with Sec-WebSocket-Accept = base64(sha1(key ++ RFC 6455 GUID)).
%% After that the MQTT bytes travel in binary frames (RFC 6455): client frames
%% must be masked, fragments (continuation frames) are joined, ping gets pong,
%% close is answered with close. No permessage-deflate (compress = false, the
%% default), no origin check (check_origin_enable = false, the default).
-module(emqx_double_ws).

-export([handshake/3, parse_frame/1, frame/2, accept_key/1, pick_subprotocol/2]).

-define(GUID, <<"258EAFA5-E914-47DA-95CA-C5AB0DC85B11">>).
-define(MAX_REQUEST, 65536).

%% Reads the HTTP/1.1 request with Recv() -> {ok, Bin} | {error, _} and
%% answers it with Send(IoData). Opts: #{path, fail_if_no_subprotocol,
%% subprotocols}. -> {ok, Rest} (bytes after the request: frames already)
%% | {error, Reason} (an error answer was sent when there was a request).
handshake(Recv, Send, Opts) ->
    case read_request(Recv) of
        {ok, Request, Rest} ->
            case answer(Request, Opts) of
                {101, Headers} ->
                    Send(response(101, Headers)),
                    {ok, Rest};
                Code ->
                    Send(response(Code, [])),
                    {error, {http, Code}}
            end;
        {error, bad_request} ->
            Send(response(400, [])),
            {error, bad_request};
        {error, Reason} ->
            {error, Reason}
    end.

%% -> {ok, {Method, Uri, Version, Headers}, Rest} | {error, Reason}
read_request(Recv) -> request_line(Recv, <<>>).

request_line(Recv, Buf) ->
    case erlang:decode_packet(http_bin, Buf, []) of
        {ok, {http_request, Method, Uri, Vsn}, Rest} -> headers(Recv, Rest, {Method, Uri, Vsn}, []);
        {ok, _, _} -> {error, bad_request};
        {more, _} -> more(Recv, Buf, fun(B) -> request_line(Recv, B) end);
        {error, _} -> {error, bad_request}
    end.

headers(Recv, Buf, {Method, Uri, Vsn}, Acc) ->
    case erlang:decode_packet(httph_bin, Buf, []) of
        {ok, {http_header, _, Name, _, Value}, Rest} ->
            headers(Recv, Rest, {Method, Uri, Vsn}, [{lower(Name), Value} | Acc]);
        {ok, http_eoh, Rest} -> {ok, {Method, Uri, Vsn, lists:reverse(Acc)}, Rest};
        {ok, _, _} -> {error, bad_request};
        {more, _} -> more(Recv, Buf, fun(B) -> headers(Recv, B, {Method, Uri, Vsn}, Acc) end);
        {error, _} -> {error, bad_request}
    end.

more(_Recv, Buf, _Next) when byte_size(Buf) > ?MAX_REQUEST -> {error, bad_request};
more(Recv, Buf, Next) ->
    case Recv() of
        {ok, Data} -> Next(<<Buf/binary, Data/binary>>);
        {error, Reason} -> {error, Reason}
    end.

lower(Name) when is_atom(Name) -> string:lowercase(atom_to_binary(Name));
lower(Name) -> string:lowercase(Name).

%% All values of a header, split on commas and trimmed.
tokens(Name, Headers) ->
    [T || {N, V} <- Headers, N =:= Name,
          T0 <- binary:split(V, <<",">>, [global]),
          (T = string:trim(T0)) =/= <<>>].

header(Name, Headers) ->
    case lists:keyfind(Name, 1, Headers) of
        {_, V} -> string:trim(V);
        false -> undefined
    end.

%% The answer of 4.4.4's cowboy route and emqx_ws_connection:init/2, in that
%% order: route (404), subprotocol (400), then the upgrade itself (400).
answer({Method, Uri, Vsn, Headers}, #{path := MqttPath} = Opts) ->
    case path(Uri) of
        undefined -> 400;
        Path when Path =/= MqttPath -> 404;
        _ ->
            case subprotocol(Headers, Opts) of
                error -> 400;
                Proto ->
                    case upgrade(Method, Vsn, Headers) of
                        {ok, Key} ->
                            {101, [{<<"connection">>, <<"Upgrade">>},
                                   {<<"upgrade">>, <<"websocket">>},
                                   {<<"sec-websocket-accept">>, accept_key(Key)}]
                             ++ [{<<"sec-websocket-protocol">>, Proto} || Proto =/= none]};
                        error -> 400
                    end
            end
    end.

path({abs_path, P}) -> strip_query(P);
path({absoluteURI, _, _, _, P}) -> strip_query(P);
path(_) -> undefined.

strip_query(P) -> binary_to_list(hd(binary:split(P, [<<"?">>, <<"#">>]))).

subprotocol(Headers, #{fail_if_no_subprotocol := FailIfNone, subprotocols := Supported}) ->
    case tokens(<<"sec-websocket-protocol">>, Headers) of
        [] when FailIfNone -> error;
        [] -> none;
        Offered ->
            case pick_subprotocol(Offered, Supported) of
                {ok, P} -> P;
                error -> error
            end
    end.

%% The first offered subprotocol the listener supports.
pick_subprotocol([], _) -> error;
pick_subprotocol([P | Rest], Supported) ->
    case lists:member(P, Supported) of
        true -> {ok, P};
        false -> pick_subprotocol(Rest, Supported)
    end.

upgrade('GET', {1, 1}, Headers) ->
    Lower = fun(L) -> [string:lowercase(T) || T <- L] end,
    Checks = [lists:member(<<"upgrade">>, Lower(tokens(<<"connection">>, Headers))),
              lists:member(<<"websocket">>, Lower(tokens(<<"upgrade">>, Headers))),
              lists:member(header(<<"sec-websocket-version">>, Headers), [<<"13">>, <<"8">>, <<"7">>])],
    case {lists:all(fun(C) -> C end, Checks), header(<<"sec-websocket-key">>, Headers)} of
        {true, Key} when Key =/= undefined, Key =/= <<>> -> {ok, Key};
        _ -> error
    end;
upgrade(_, _, _) -> error.

accept_key(Key) -> base64:encode(crypto:hash(sha, <<Key/binary, ?GUID/binary>>)).

response(101, Headers) ->
    ["HTTP/1.1 101 Switching Protocols\r\n",
     [[K, ": ", V, "\r\n"] || {K, V} <- Headers], "\r\n"];
response(Code, _) ->
    [io_lib:format("HTTP/1.1 ~p ~s\r\n", [Code, reason(Code)]),
     "server: emqx-double\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"].

reason(400) -> "Bad Request";
reason(404) -> "Not Found".

%% ---------------------------------------------------------------------------
%% Frames (RFC 6455 section 5)

%% One client frame from the front of Bin.
%% -> {ok, Fin, Opcode, Payload, Rest} | more | {error, CloseCode}
parse_frame(<<_Fin:1, Rsv:3, _Op:4, _/binary>>) when Rsv =/= 0 -> {error, 1002};
parse_frame(<<_:8, 0:1, _:7, _/binary>>) -> {error, 1002};   %% unmasked
parse_frame(<<_:4, Op:4, _/binary>>) when Op > 2, Op < 8; Op > 10 -> {error, 1002};
parse_frame(<<0:1, _:3, Op:4, _/binary>>) when Op >= 8 -> {error, 1002}; %% fragmented control
parse_frame(<<_:4, Op:4, 1:1, Len:7, _/binary>>) when Op >= 8, Len > 125 -> {error, 1002};
parse_frame(<<Fin:1, _:3, Op:4, 1:1, 127:7, 0:1, Len:63, Rest/binary>>) -> payload(Fin, Op, Len, Rest);
parse_frame(<<_:8, 1:1, 127:7, 1:1, _:63, _/binary>>) -> {error, 1009};
parse_frame(<<Fin:1, _:3, Op:4, 1:1, 126:7, Len:16, Rest/binary>>) -> payload(Fin, Op, Len, Rest);
parse_frame(<<Fin:1, _:3, Op:4, 1:1, Len:7, Rest/binary>>) when Len < 126 -> payload(Fin, Op, Len, Rest);
parse_frame(_) -> more.

payload(Fin, Op, Len, Bin) ->
    case Bin of
        <<Key:4/binary, Masked:Len/binary, Rest/binary>> ->
            {ok, Fin =:= 1, Op, unmask(Masked, Key, <<>>), Rest};
        _ -> more
    end.

unmask(<<W:32, Rest/binary>>, Key = <<K:32>>, Acc) -> unmask(Rest, Key, <<Acc/binary, (W bxor K):32>>);
unmask(<<W:24>>, <<K:24, _:8>>, Acc) -> <<Acc/binary, (W bxor K):24>>;
unmask(<<W:16>>, <<K:16, _:16>>, Acc) -> <<Acc/binary, (W bxor K):16>>;
unmask(<<W:8>>, <<K:8, _:24>>, Acc) -> <<Acc/binary, (W bxor K):8>>;
unmask(<<>>, _, Acc) -> Acc.

%% One unmasked server frame (FIN set) with opcode Op.
frame(Op, IoData) ->
    Bin = iolist_to_binary(IoData),
    [<<1:1, 0:3, Op:4>>, length_bytes(byte_size(Bin)), Bin].

length_bytes(L) when L < 126 -> <<0:1, L:7>>;
length_bytes(L) when L < 65536 -> <<0:1, 126:7, L:16>>;
length_bytes(L) -> <<0:1, 127:7, L:64>>.
