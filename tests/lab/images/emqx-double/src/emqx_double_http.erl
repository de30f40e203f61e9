%% emqx-double (a test double of EMQX 4.4.4, not EMQX): the management HTTP
%% API of emqx_management on management.listener.http (8081) and/or
%% management.listener.https (TLS with the .certfile, .keyfile, .cacertfile,
%% .verify, .fail_if_no_peer_cert and .tls_versions keys): GET /status
%% (no auth, always 200 as in 4.4.4) and GET /api/v4/nodes, /nodes/{node},
%% /brokers with basic auth against the applications of the mnesia table
%% mqtt_app (emqx_double_mgmt), as 4.4.4's emqx_mgmt_auth:is_authorized/2.
%% Each listener that is set is served, with the same handlers; with neither
%% set, http on 8081 (what the shipped emqx_management.conf sets).
%% A tiny HTTP/1.1 server on gen_tcp / ssl; one request per connection.
-module(emqx_double_http).

-export([start_link/0, init/1, node_info/0, broker_info/0, json/1, listeners/0, loads/0]).

start_link() -> proc_lib:start_link(?MODULE, init, [self()]).

init(Parent) ->
    Get = fun(K) -> emqx_double:plugin_conf(emqx_management, K) end,
    Listeners = case {Get("management.listener.http"), Get("management.listener.https")} of
                    {undefined, undefined} -> [{tcp, "http", "8081"}];
                    {Http, Https} -> [{tcp, "http", Http} || Http =/= undefined]
                                         ++ [{ssl, "https", Https} || Https =/= undefined]
                end,
    case listen(Listeners, Get, []) of
        {ok, Socks} ->
            %% The listen sockets belong to this process; the acceptors are
            %% linked to it, so stopping it (plugin unloaded) stops them all.
            %% Each listener counts its live connections (`listeners`).
            Infos = [begin
                         C = atomics:new(1, [{signed, true}]),
                         spawn_link(emqx_double, accept_loop,
                                    [T, L, fun(S) -> counted(C, fun() -> request(T, S) end) end]),
                         {Name, Value, C}
                     end || {T, Name, Value, L} <- Socks],
            persistent_term:put({?MODULE, listeners}, Infos),
            proc_lib:init_ack(Parent, {ok, self()}),
            receive stop -> ok end;
        {error, Reason} ->
            proc_lib:init_ack(Parent, {error, Reason})
    end.

listen([], _Get, Acc) -> {ok, lists:reverse(Acc)};
listen([{T, Name, Value} | More], Get, Acc) ->
    {Ip, Port} = emqx_double_mqtt:parse_bind(Value),
    Opts = [binary, {packet, http_bin}, {active, false}, {reuseaddr, true}
            | [{ip, Ip} || Ip =/= any]],
    Listen = case T of
                 tcp -> gen_tcp:listen(Port, Opts);
                 ssl -> {ok, _} = application:ensure_all_started(ssl),
                        ssl:listen(Port, Opts ++ emqx_double_mqtt:tls_options(
                                                   "management.listener.https", Get))
             end,
    case Listen of
        {ok, L} ->
            emqx_double:say("management HTTP API (~s) on ~s", [Name, Value]),
            listen(More, Get, [{T, Name, Value, L} | Acc]);
        {error, Reason} ->
            [close(T0, L0) || {T0, _, _, L0} <- Acc],
            {error, {http_listen, Name, Value, Reason}}
    end.

counted(C, Fun) ->
    atomics:add(C, 1, 1),
    try Fun() after atomics:sub(C, 1, 1) end.

%% For `emqx_ctl listeners`: the ranch listeners http:management and
%% https:management as 4.4.4 lists them (listen_on is the port only;
%% acceptors and max_clients are the configured values, which the double
%% does not enforce on the API).
listeners() ->
    Get = fun(K, D) -> case emqx_double:plugin_conf(emqx_management, K) of
                           undefined -> D;
                           V -> V
                       end
          end,
    case emqx_double:plugin_active(emqx_management) of
        false -> [];
        true ->
            [begin
                 P = "management.listener." ++ Name,
                 {_, Port} = emqx_double_mqtt:parse_bind(Value),
                 {Name ++ ":management", Port,
                  list_to_integer(Get(P ++ ".acceptors", "4")),
                  list_to_integer(Get(P ++ ".max_clients", "512")),
                  atomics:get(C, 1)}
             end || {Name, Value, C} <- persistent_term:get({?MODULE, listeners}, [])]
    end.

recv(tcp, S, Timeout) -> gen_tcp:recv(S, 0, Timeout);
recv(ssl, S, Timeout) -> ssl:recv(S, 0, Timeout).
send(tcp, S, Data) -> gen_tcp:send(S, Data);
send(ssl, S, Data) -> ssl:send(S, Data).
close(tcp, S) -> gen_tcp:close(S);
close(ssl, S) -> ssl:close(S).

request(T, S) ->
    case recv(T, S, 10000) of
        {ok, {http_request, Method, {abs_path, Path}, _}} ->
            Headers = headers(T, S, #{}),
            {Code, Extra, Type, Body} =
                try handle(Method, Path, Headers)
                catch C:E:ST ->
                        emqx_double:say("[error] HTTP ~s: ~p:~p ~p", [Path, C, E, ST]),
                        {500, [], "text/plain", <<"internal error">>}
                end,
            Bin = iolist_to_binary(Body),
            send(T, S, [io_lib:format("HTTP/1.1 ~p ~s\r\n", [Code, reason(Code)]),
                             "server: emqx-double\r\n",
                             "content-type: ", Type, "\r\n",
                             io_lib:format("content-length: ~p\r\n", [byte_size(Bin)]),
                             [[K, ": ", V, "\r\n"] || {K, V} <- Extra],
                             "connection: close\r\n\r\n", Bin]);
        _ -> ok
    end,
    close(T, S).

headers(T, S, Acc) ->
    case recv(T, S, 10000) of
        {ok, {http_header, _, Name, _, Value}} ->
            Key = string:lowercase(if is_atom(Name) -> atom_to_binary(Name); true -> Name end),
            headers(T, S, Acc#{Key => Value});
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

%% Basic auth: AppId:AppSecret, checked against the mqtt_app table.
authorized(Headers) ->
    case maps:get(<<"authorization">>, Headers, undefined) of
        <<"Basic ", B64/binary>> ->
            try binary:split(base64:decode(string:trim(B64)), <<":">>) of
                [Id, Secret] -> emqx_double_mgmt:is_authorized(Id, Secret);
                _ -> false
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
      sysdescr => <<"EMQ X Broker">>,
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

json(Term) -> emqx_double_json:encode(Term).
