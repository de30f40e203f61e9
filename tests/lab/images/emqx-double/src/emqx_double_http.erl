%% emqx-double (a test double of EMQX 4.4.4, not EMQX): the management HTTP
%% API of emqx_management on management.listener.http (8081): GET /status
%% (no auth, always 200 as in 4.4.4) and GET /api/v4/nodes, /nodes/{node},
%% /brokers with basic auth against management.default_application.id/secret.
%% A tiny HTTP/1.1 server on gen_tcp; one request per connection.
-module(emqx_double_http).

-export([start_link/0, init/1, node_info/0, broker_info/0, json/1]).

start_link() -> proc_lib:start_link(?MODULE, init, [self()]).

init(Parent) ->
    Value = case emqx_double:plugin_conf(emqx_management, "management.listener.http") of
                undefined -> "8081";
                V -> V
            end,
    {Ip, Port} = case string:split(Value, ":", trailing) of
                     [P] -> {any, list_to_integer(P)};
                     [H, P] -> {ok, A} = inet:parse_address(H), {A, list_to_integer(P)}
                 end,
    Opts = [binary, {packet, http_bin}, {active, false}, {reuseaddr, true}
            | [{ip, Ip} || Ip =/= any]],
    case gen_tcp:listen(Port, Opts) of
        {ok, L} ->
            emqx_double:say("management HTTP API on ~s", [Value]),
            proc_lib:init_ack(Parent, {ok, self()}),
            emqx_double:accept_loop(L, fun request/1);
        {error, Reason} ->
            proc_lib:init_ack(Parent, {error, {http_listen, Value, Reason}})
    end.

request(S) ->
    case gen_tcp:recv(S, 0, 10000) of
        {ok, {http_request, Method, {abs_path, Path}, _}} ->
            Headers = headers(S, #{}),
            {Code, Extra, Type, Body} =
                try handle(Method, Path, Headers)
                catch C:E:ST ->
                        emqx_double:say("[error] HTTP ~s: ~p:~p ~p", [Path, C, E, ST]),
                        {500, [], "text/plain", <<"internal error">>}
                end,
            Bin = iolist_to_binary(Body),
            gen_tcp:send(S, [io_lib:format("HTTP/1.1 ~p ~s\r\n", [Code, reason(Code)]),
                             "server: emqx-double\r\n",
                             "content-type: ", Type, "\r\n",
                             io_lib:format("content-length: ~p\r\n", [byte_size(Bin)]),
                             [[K, ": ", V, "\r\n"] || {K, V} <- Extra],
                             "connection: close\r\n\r\n", Bin]);
        _ -> ok
    end,
    gen_tcp:close(S).

headers(S, Acc) ->
    case gen_tcp:recv(S, 0, 10000) of
        {ok, {http_header, _, Name, _, Value}} ->
            Key = string:lowercase(if is_atom(Name) -> atom_to_binary(Name); true -> Name end),
            headers(S, Acc#{Key => Value});
        {ok, http_eoh} -> Acc;
        _ -> Acc
    end.

reason(200) -> "OK";
reason(401) -> "Unauthorized";
reason(404) -> "Not Found";
reason(405) -> "Method Not Allowed";
reason(_) -> "Internal Server Error".

handle('GET', <<"/status">>, _) ->
    {Status, _} = init:get_status(),
    App = case emqx_double:is_running() of true -> "running"; false -> "not_running" end,
    {200, [], "text/plain",
     io_lib:format("Node ~s is ~s~nemqx is ~s", [node(), Status, App])};
handle(Method, <<"/api/v4/", Rest/binary>>, Headers) ->
    case authorized(Headers) of
        false ->
            {401, [{"WWW-Authenticate", "Basic Realm=\"minirest-server\""}],
             "text/plain", <<"UNAUTHORIZED">>};
        true when Method =/= 'GET' -> {405, [], "text/plain", <<"Method Not Allowed">>};
        true -> api(binary:split(strip_query(Rest), <<"/">>, [global, trim_all]))
    end;
handle(_, _, _) ->
    {404, [], "text/plain", <<"Not Found">>}.

strip_query(P) -> hd(binary:split(P, <<"?">>)).

authorized(Headers) ->
    Id = emqx_double:plugin_conf(emqx_management, "management.default_application.id"),
    Secret = emqx_double:plugin_conf(emqx_management, "management.default_application.secret"),
    case maps:get(<<"authorization">>, Headers, undefined) of
        <<"Basic ", B64/binary>> when Id =/= undefined ->
            try base64:decode(string:trim(B64)) of
                Creds -> Creds =:= iolist_to_binary([Id, ":", Secret])
            catch _:_ -> false
            end;
        _ -> false
    end.

ok(Data) -> {200, [], "application/json", json(#{code => 0, data => Data})}.

api([<<"nodes">>]) ->
    ok([result(N, rpc:call(N, ?MODULE, node_info, [], 15000))
        || N <- emqx_double_cluster:running_nodes()]);
api([<<"nodes">>, Node]) ->
    N = binary_to_atom(uri_string:percent_decode(Node)),
    ok(result(N, rpc:call(N, ?MODULE, node_info, [], 15000)));
api([<<"brokers">>]) ->
    ok([result(N, rpc:call(N, ?MODULE, broker_info, [], 15000))
        || N <- emqx_double_cluster:running_nodes()]);
api([<<"brokers">>, Node]) ->
    N = binary_to_atom(uri_string:percent_decode(Node)),
    ok(result(N, rpc:call(N, ?MODULE, broker_info, [], 15000)));
api(_) ->
    {404, [], "application/json",
     json(#{code => 404, message => <<"emqx-double: endpoint not emulated">>})}.

result(N, {badrpc, R}) -> #{node => N, error => iolist_to_binary(io_lib:format("~0p", [R]))};
result(_, Info) -> Info.

%% emqx_mgmt:node_info/1 field names.
node_info() ->
    Total = erlang:memory(total),
    [L1, L5, L15 | _] = loads(),
    #{node => node(),
      node_status => <<"Running">>,
      version => list_to_binary(emqx_double:version()),
      uptime => list_to_binary(emqx_double:uptime_string()),
      otp_release => otp_release(),
      memory_total => kmg(Total + erlang:memory(system)),
      memory_used => kmg(Total),
      process_available => erlang:system_info(process_limit),
      process_used => erlang:system_info(process_count),
      max_fds => max_fds(),
      connections => emqx_double_mqtt:connections(),
      load1 => L1, load5 => L5, load15 => L15}.

%% emqx_mgmt:broker_info/1 field names.
broker_info() ->
    {{Y, Mo, D}, {H, Mi, S}} = calendar:local_time(),
    #{node => node(),
      node_status => <<"Running">>,
      version => list_to_binary(emqx_double:version()),
      sysdescr => <<"EMQX Broker">>,
      uptime => list_to_binary(emqx_double:uptime_string()),
      datetime => iolist_to_binary(io_lib:format("~4..0w-~2..0w-~2..0w ~2..0w:~2..0w:~2..0w",
                                                 [Y, Mo, D, H, Mi, S])),
      otp_release => otp_release()}.

otp_release() ->
    File = filename:join([code:root_dir(), "releases", erlang:system_info(otp_release), "OTP_VERSION"]),
    Otp = case file:read_file(File) of
              {ok, B} -> string:trim(B);
              _ -> list_to_binary(erlang:system_info(otp_release))
          end,
    iolist_to_binary([Otp, "/", erlang:system_info(version)]).

max_fds() ->
    %% One proplist, or one per pollset (OTP 21+).
    Info = case erlang:system_info(check_io) of
               [L | _] = Ls when is_list(L) -> Ls;
               P -> [P]
           end,
    case [N || P <- Info, {max_fds, N} <- P] of
        [N | _] -> N;
        [] -> 0
    end.

loads() ->
    case file:read_file("/proc/loadavg") of
        {ok, B} ->
            [list_to_binary(io_lib:format("~.2f", [binary_to_float(W)]))
             || W <- lists:sublist(binary:split(B, <<" ">>, [global]), 3)];
        _ -> [<<"0.00">>, <<"0.00">>, <<"0.00">>]
    end.

-define(KB, 1024).
-define(MB, (1024 * 1024)).
-define(GB, (1024 * 1024 * 1024)).
kmg(B) when B > ?GB -> fmt(B / ?GB, "G");
kmg(B) when B > ?MB -> fmt(B / ?MB, "M");
kmg(B) when B > ?KB -> fmt(B / ?KB, "K");
kmg(B) -> B.
fmt(F, U) -> iolist_to_binary(io_lib:format("~.2f~s", [F, U])).

%% A small JSON encoder for the maps/lists/atoms/binaries/numbers used here.
json(M) when is_map(M) ->
    ["{", lists:join(",", [[json_key(K), ":", json(V)] || {K, V} <- lists:sort(maps:to_list(M))]), "}"];
json(L) when is_list(L) -> ["[", lists:join(",", [json(E) || E <- L]), "]"];
json(true) -> "true";
json(false) -> "false";
json(null) -> "null";
json(A) when is_atom(A) -> json(atom_to_binary(A));
json(I) when is_integer(I) -> integer_to_list(I);
json(F) when is_float(F) -> float_to_list(F, [{decimals, 6}, compact]);
json(B) when is_binary(B) -> [$", escape(B), $"].

json_key(K) when is_atom(K) -> json(atom_to_binary(K));
json_key(K) -> json(K).

escape(B) ->
    [case C of
         $" -> "\\\"";
         $\\ -> "\\\\";
         $\n -> "\\n";
         $\r -> "\\r";
         $\t -> "\\t";
         _ when C < 32 -> io_lib:format("\\u~4.16.0b", [C]);
         _ -> C
     end || <<C>> <= B].
