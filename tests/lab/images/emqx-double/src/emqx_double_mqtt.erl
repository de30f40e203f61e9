%% emqx-double (a test double of EMQX 4.4.4, not EMQX): a small MQTT broker.
%% MQTT 3.1, 3.1.1 and 5 over TCP, TLS, WebSocket and WebSocket over TLS
%% (listener.tcp|ssl|ws|wss.<name>; emqx_double_ws holds the WebSocket layer,
%% so one connection process serves all four): CONNECT, SUBSCRIBE (+ and # wildcards),
%% UNSUBSCRIBE, PUBLISH QoS 0/1 (QoS 2 handshake accepted, delivered at most
%% QoS 1), PINGREQ, DISCONNECT, last will. Authentication and ACL as
%% emqx_double_auth decides. No retained messages, no sessions. A publish is
%% delivered to local subscribers and forwarded to every other running node
%% of the cluster.
-module(emqx_double_mqtt).
-behaviour(gen_server).

-export([start_link/0, publish/4, connections/0, topic_match/2, tls_options/2, parse_bind/1,
         listeners/0, stats/0, listen_on/1]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2, terminate/2]).
-export([acceptor/4, conn_main/3]).

-define(SUBS, emqx_double_subs).      %% bag {Filter, Pid, QoS}
-define(CLIENTS, emqx_double_clients). %% set {ClientId, Pid}
-define(STATS, emqx_double_stats).    %% set {Stat, Value}: the .max values
-define(STATS_TICK, 1000).            %% emqx_stats' tick

-define(CONNECT, 1). -define(CONNACK, 2). -define(PUBLISH, 3). -define(PUBACK, 4).
-define(PUBREC, 5). -define(PUBREL, 6). -define(PUBCOMP, 7). -define(SUBSCRIBE, 8).
-define(SUBACK, 9). -define(UNSUBSCRIBE, 10). -define(UNSUBACK, 11).
-define(PINGREQ, 12). -define(PINGRESP, 13). -define(DISCONNECT, 14).

start_link() -> gen_server:start_link({local, ?MODULE}, ?MODULE, [], []).

connections() -> ets:info(?CLIENTS, size).

%% Route a message in the cluster.
publish(Topic, Payload, QoS, Retain) ->
    deliver_local(Topic, Payload, QoS, Retain),
    [erlang:send({?MODULE, N}, {route, Topic, Payload, QoS, Retain}, [noconnect])
     || N <- emqx_double_cluster:running_nodes(), N =/= node()],
    ok.

%% ---------------------------------------------------------------------------
%% Server: owns the tables and the listeners.

init([]) ->
    process_flag(trap_exit, true),
    ets:new(?SUBS, [bag, public, named_table]),
    ets:new(?CLIENTS, [set, public, named_table]),
    ets:new(?STATS, [set, public, named_table]),
    %% The listeners of 4.4.4's emqx.conf; one whose key is not set is not served.
    Listeners = [{Proto, Name, V} || {Proto, Name} <- [{tcp, "external"}, {tcp, "internal"},
                                                       {ssl, "external"}, {ws, "external"},
                                                       {wss, "external"}],
                                     (V = emqx_double:conf(key(Proto, Name, ""))) =/= undefined],
    Infos = [listen(Proto, Name, Value) || {Proto, Name, Value} <- Listeners],
    persistent_term:put({?MODULE, listeners}, Infos),
    erlang:send_after(?STATS_TICK, self(), stats),
    {ok, #{topics => #{}}}.

%% [#{proto, name, value, acceptors, max, conns}] for `emqx_ctl listeners`;
%% conns is an atomics array: 1 = live connections, 2 = refused (maxlimit).
listeners() -> persistent_term:get({?MODULE, listeners}, []).

%% The emqx_stats keys the double can fill from its own tables, as
%% [{Key, Value}]. connections, live_connections, channels and sessions are
%% all the connected clients (clean sessions only); subscriptions,
%% suboptions and subscribers the subscriptions of this node; topics and
%% routes the distinct topic filters subscribed on each running node of the
%% cluster (a route per filter and node, as emqx_route). The .max values are
%% the highest seen by a 1 s tick (and at each connect / subscribe), as
%% emqx_stats samples them.
stats() ->
    Now = gen_server:call(?MODULE, stats, 15000),
    lists:sort(lists:append([[{count_key(K), V}, {max_key(K), max(V, maxval(K))}]
                             || {K, V} <- Now])).

count_key(K) -> list_to_atom(atom_to_list(K) ++ ".count").
max_key(K) -> list_to_atom(atom_to_list(K) ++ ".max").
maxval(K) -> case ets:lookup(?STATS, K) of [{_, M}] -> M; [] -> 0 end.

%% Raise the recorded maximum of K to V.
note_max(K, V) ->
    case ets:lookup(?STATS, K) of
        [{_, M}] when M >= V -> ok;
        _ -> ets:insert(?STATS, {K, V}), ok
    end.

local_stats() ->
    Conns = ets:info(?CLIENTS, size),
    Subs = ets:info(?SUBS, size),
    [{connections, Conns}, {live_connections, Conns}, {channels, Conns}, {sessions, Conns},
     {subscriptions, Subs}, {suboptions, Subs}, {subscribers, Subs}].

%% The other running nodes; none while mnesia stops (`docker stop`).
running_peers() ->
    try emqx_double_cluster:running_nodes() -- [node()]
    catch _:_ -> []
    end.

distinct_filters() -> distinct_filters(ets:first(?SUBS), 0).
distinct_filters('$end_of_table', N) -> N;
distinct_filters(K, N) -> distinct_filters(ets:next(?SUBS, K), N + 1).

%% Local counts, and the routes of the running nodes (theirs as they last
%% reported them).
current_stats(#{topics := Peers}) ->
    Running = running_peers(),
    Routes = distinct_filters() + lists:sum([C || {N, C} <- maps:to_list(Peers),
                                                  lists:member(N, Running)]),
    local_stats() ++ [{topics, Routes}, {routes, Routes}].

key(Proto, Name, Suffix) -> "listener." ++ atom_to_list(Proto) ++ "." ++ Name ++ Suffix.

listen(Proto, Name, Value) ->
    {Ip, Port} = parse_bind(Value),
    Get = fun(Suffix, Default) -> emqx_double:conf(key(Proto, Name, Suffix), Default) end,
    Listener = #{zone => Get(".zone", Name),
                 %% WebSocket options, with the defaults of 4.4.4's schema.
                 path => Get(".mqtt_path", "/mqtt"),
                 fail_if_no_subprotocol => Get(".fail_if_no_subprotocol", "true") =:= "true",
                 subprotocols => [list_to_binary(P) || P <- string:tokens(
                                      Get(".supported_subprotocols",
                                          "mqtt, mqtt-v3, mqtt-v3.1.1, mqtt-v5"), ", ")]},
    Acceptors = max(1, list_to_integer(Get(".acceptors", "8"))),
    Max = list_to_integer(Get(".max_connections", "1024")),
    Conns = atomics:new(2, [{signed, true}]),
    Info = #{proto => Proto, name => Name, value => Value, acceptors => Acceptors,
             max => Max, conns => Conns},
    Opts = [binary, {active, false}, {reuseaddr, true}, {nodelay, true}, {backlog, 1024}
            | [{ip, Ip} || Ip =/= any]],
    Listen = case raw(Proto) of
                 tcp -> gen_tcp:listen(Port, Opts);
                 ssl -> {ok, _} = application:ensure_all_started(ssl),
                        ssl:listen(Port, Opts ++ tls_options(key(Proto, Name, ""),
                                                             fun emqx_double:conf/1))
             end,
    case Listen of
        {ok, L} ->
            Where = case Proto of
                        _ when Proto =:= ws; Proto =:= wss -> [" path ", maps:get(path, Listener)];
                        _ -> ""
                    end,
            emqx_double:say("MQTT listener ~s:~s on ~s~s (zone ~s, ~p acceptors, "
                            "max_connections ~p)",
                            [Proto, Name, Value, Where, maps:get(zone, Listener), Acceptors, Max]),
            %% What the connection process keeps: the zone, and for WebSocket
            %% its upgrade options.
            ConnOpts = case Proto of
                           _ when Proto =:= ws; Proto =:= wss -> Listener;
                           _ -> #{zone => maps:get(zone, Listener)}
                       end,
            [spawn_link(?MODULE, acceptor, [L, Info, ConnOpts, listen_on(Value)])
             || _ <- lists:seq(1, Acceptors)],
            Info;
        {error, Reason} ->
            exit({mqtt_listen, Proto, Name, Value, Reason})
    end.

%% The ssl options of a TLS listener as 4.4.4 reads its keys: Prefix is
%% "listener.ssl.external", "listener.wss.external" or
%% "management.listener.https"; Get(Key) answers the value or undefined.
%% keyfile, certfile, cacertfile (relative to /opt/emqx), verify
%% (verify_peer | verify_none), fail_if_no_peer_cert, tls_versions; ciphers
%% and the other keys are not read.
tls_options(Prefix, Get0) ->
    Get = fun(K) -> Get0(Prefix ++ "." ++ K) end,
    File = fun(K) -> filename:absname(Get(K), emqx_double:root()) end,
    Versions = [list_to_atom(string:trim(V))
                || V <- string:split(case Get("tls_versions") of
                                        undefined -> "tlsv1.3,tlsv1.2,tlsv1.1,tlsv1";
                                        Vs -> Vs
                                    end, ",", all)],
    Verify = case Get("verify") of "verify_peer" -> verify_peer; _ -> verify_none end,
    [{verify, Verify},
     {versions, [V || V <- Versions, lists:member(V, ['tlsv1.3', 'tlsv1.2', 'tlsv1.1', tlsv1])]},
     {fail_if_no_peer_cert, Get("fail_if_no_peer_cert") =:= "true"}]
    ++ [{list_to_atom(K), File(K)} || K <- ["certfile", "keyfile", "cacertfile"],
                                      Get(K) =/= undefined].

%% "Port" or "Ip:Port" -> {any | Ip, Port}
parse_bind(Value) ->
    case string:split(Value, ":", trailing) of
        [Port] -> {any, list_to_integer(string:trim(Port))};
        [Host, Port] ->
            {ok, Ip} = inet:parse_address(string:trim(Host, both, "[]")),
            {Ip, list_to_integer(Port)}
    end.

handle_call(stats, _From, S) -> {reply, current_stats(S), S};
handle_call(_, _From, S) -> {reply, ok, S}.
handle_cast(_, S) -> {noreply, S}.

%% The stats tick: maxima, and this node's route count to the other running
%% nodes (for their topics.count / routes.count).
handle_info(stats, S = #{topics := Peers}) ->
    erlang:send_after(?STATS_TICK, self(), stats),
    [note_max(K, V) || {K, V} <- current_stats(S)],
    Mine = distinct_filters(),
    Running = running_peers(),
    [erlang:send({?MODULE, N}, {routes, node(), Mine}, [noconnect]) || N <- Running],
    {noreply, S#{topics := maps:with(Running, Peers)}};
handle_info({routes, N, Count}, S = #{topics := Peers}) ->
    {noreply, S#{topics := Peers#{N => Count}}};

handle_info({route, Topic, Payload, QoS, Retain}, S) ->
    deliver_local(Topic, Payload, QoS, Retain),
    {noreply, S};
handle_info({'EXIT', _, normal}, S) -> {noreply, S};
handle_info({'EXIT', _, Reason}, S) -> {stop, Reason, S};
handle_info(_, S) -> {noreply, S}.

terminate(_, _) -> ok.

%% "Port" -> "0.0.0.0:Port"; "Ip:Port" as written (emqx_listeners:format/1).
listen_on(Value) ->
    case parse_bind(Value) of
        {any, Port} -> "0.0.0.0:" ++ integer_to_list(Port);
        {Ip, Port} -> inet:ntoa(Ip) ++ ":" ++ integer_to_list(Port)
    end.

%% One of the listener's `acceptors` processes, all accepting on the same
%% socket. tcp and ssl as esockd: a connection beyond max_connections (live
%% connection processes, CONNECT or not) is closed at once, before any MQTT
%% byte, and counted; ws and wss as ranch: the connection is served, and
%% the acceptor then waits until the count is below max_connections again.
%% For TLS and WebSocket the handshakes run in the connection process, so a
%% slow or failed one holds up nobody else.
acceptor(L, Info = #{proto := Proto, conns := C, max := Max}, ConnOpts, ListenOn) ->
    case sock(Proto, accept, [L]) of
        {ok, Sock} ->
            N = atomics:add_get(C, 1, 1),
            Ranch = Proto =:= ws orelse Proto =:= wss,
            case N > Max andalso not Ranch of
                true ->
                    atomics:sub(C, 1, 1),
                    atomics:add(C, 2, 1),
                    sock(Proto, close, [Sock]),
                    emqx_double:say("[error] Failed to start connection on ~s: maxlimit",
                                    [ListenOn]);
                false ->
                    Pid = spawn(?MODULE, conn_main, [{Proto, Sock}, ConnOpts, C]),
                    case sock(Proto, controlling_process, [Sock, Pid]) of
                        ok -> Pid ! go;
                        _ -> sock(Proto, close, [Sock]), exit(Pid, kill), atomics:sub(C, 1, 1)
                    end,
                    Ranch andalso wait_below(C, Max)
            end,
            acceptor(L, Info, ConnOpts, ListenOn);
        {error, closed} ->
            exit({accept, closed});
        {error, Reason} when Reason =:= emfile; Reason =:= enfile; Reason =:= system_limit ->
            %% Out of file descriptors or ports: wait a little, as esockd.
            emqx_double:say("[error] accept on ~s: ~p", [ListenOn, Reason]),
            receive after 100 -> ok end,
            acceptor(L, Info, ConnOpts, ListenOn);
        {error, _} ->
            acceptor(L, Info, ConnOpts, ListenOn)
    end.

wait_below(C, Max) ->
    case atomics:get(C, 1) >= Max of
        true -> receive after 100 -> ok end, wait_below(C, Max);
        false -> true
    end.

%% A connection process: counted live until it ends, however it ends.
conn_main(Conn, ConnOpts, C) ->
    try conn_init(Conn, ConnOpts)
    after atomics:sub(C, 1, 1)
    end.

%% The socket under a transport: WebSocket runs over TCP, WebSocket Secure
%% over TLS.
raw(ws) -> tcp;
raw(wss) -> ssl;
raw(T) -> T.

%% One socket call over plain TCP or TLS.
sock(ws, F, Args) -> sock(tcp, F, Args);
sock(wss, F, Args) -> sock(ssl, F, Args);
sock(tcp, accept, Args) -> apply(gen_tcp, accept, Args);
sock(ssl, accept, Args) -> apply(ssl, transport_accept, Args);
sock(tcp, F, Args) when F =:= setopts; F =:= peername -> apply(inet, F, Args);
sock(tcp, F, Args) -> apply(gen_tcp, F, Args);
sock(ssl, F, Args) -> apply(ssl, F, Args).

deliver_local(Topic, Payload, QoS, Retain) ->
    Matches = [{Pid, SQoS} || {Filter, Pid, SQoS} <- ets:tab2list(?SUBS),
                              topic_match(Topic, Filter)],
    %% One copy per subscriber, at the highest matching subscription QoS.
    Best = lists:foldl(fun({P, Q}, Acc) -> maps:update_with(P, fun(O) -> max(O, Q) end, Q, Acc) end,
                       #{}, Matches),
    maps:foreach(fun(Pid, SQoS) -> Pid ! {deliver, Topic, Payload, min(QoS, SQoS), Retain} end,
                 Best).

%% MQTT topic filter matching; wildcards do not match topics starting with $.
topic_match(<<"$", _/binary>>, <<"+", _/binary>>) -> false;
topic_match(<<"$", _/binary>>, <<"#", _/binary>>) -> false;
topic_match(Topic, Filter) ->
    match_words(binary:split(Topic, <<"/">>, [global]),
                binary:split(Filter, <<"/">>, [global])).

match_words(_, [<<"#">>]) -> true;
match_words([], []) -> true;
match_words([_ | T], [<<"+">> | F]) -> match_words(T, F);
match_words([W | T], [W | F]) -> match_words(T, F);
match_words(_, _) -> false.

valid_filter(<<>>) -> false;
valid_filter(F) ->
    Words = binary:split(F, <<"/">>, [global]),
    valid_words(Words).
valid_words([]) -> true;
valid_words([<<"#">>]) -> true;
valid_words([<<"+">> | T]) -> valid_words(T);
valid_words([W | T]) ->
    binary:match(W, [<<"#">>, <<"+">>]) =:= nomatch andalso valid_words(T).

%% ---------------------------------------------------------------------------
%% Connection process

%% Transport: tcp | ssl | ws | wss. For ws and wss the socket carries
%% WebSocket frames: incoming data is unwrapped into the same MQTT buffer
%% (wsbuf holds an incomplete frame) and every packet sent goes out as one
%% binary frame, so authentication, ACL and routing are the same everywhere.
conn_init({Transport, Sock0}, Listener = #{zone := Zone}) ->
    receive go -> ok after 5000 -> exit(normal) end,
    process_flag(trap_exit, true),
    Sock = case raw(Transport) of
               tcp -> Sock0;
               ssl -> case ssl:handshake(Sock0, 10000) of
                          {ok, S} -> S;
                          {error, _} -> ssl:close(Sock0), exit(normal)
                      end
           end,
    St0 = #{sock => Sock, transport => Transport, zone => Zone, buf => <<>>, ver => 4,
            client => undefined, keepalive => 0, will => undefined, pid_next => 1,
            connected => false, wsbuf => <<>>, frag => undefined, ws_closed => false},
    St = case Transport of
             _ when Transport =:= ws; Transport =:= wss -> ws_upgrade(St0, Listener);
             _ -> St0
         end,
    setopts(St, [{active, once}]),
    case incoming(St, <<>>) of
        {ok, St1} -> conn_loop(St1);
        {stop, St1, Why} -> close(St1, Why)
    end.

%% The HTTP upgrade; bytes that came after the request are frames already.
ws_upgrade(St = #{transport := T, sock := Sock}, Listener) ->
    Recv = fun() -> sock(T, recv, [Sock, 0, 10000]) end,
    Send = fun(Data) -> sock(T, send, [Sock, Data]) end,
    case emqx_double_ws:handshake(Recv, Send, Listener) of
        {ok, Rest} -> St#{wsbuf := Rest};
        {error, _} -> sock(T, close, [Sock]), exit(normal)
    end.

setopts(#{transport := T, sock := S}, Opts) -> sock(T, setopts, [S, Opts]).

conn_loop(St = #{sock := Sock, keepalive := KA, connected := Connected}) ->
    Timeout = if not Connected -> 10000; KA =:= 0 -> infinity; true -> KA * 1500 end,
    receive
        {Tag, Sock, Data} when Tag =:= tcp; Tag =:= ssl ->
            setopts(St, [{active, once}]),
            case incoming(St, Data) of
                {ok, St1} -> conn_loop(St1);
                {stop, St1, Why} -> close(St1, Why)
            end;
        {Tag, Sock} when Tag =:= tcp_closed; Tag =:= ssl_closed -> close(St, closed);
        {Tag, Sock, _} when Tag =:= tcp_error; Tag =:= ssl_error -> close(St, closed);
        {deliver, Topic, Payload, QoS, _Retain} ->
            conn_loop(send_publish(St, Topic, Payload, QoS));
        {kick, _} -> close(St, kicked);
        _ -> conn_loop(St)
    after Timeout -> close(St, keepalive_timeout)
    end.

%% Bytes from the socket. -> {ok, St} | {stop, St, Why}
incoming(St = #{transport := T, buf := Buf}, Data) when T =:= tcp; T =:= ssl ->
    handle_data(St#{buf := <<Buf/binary, Data/binary>>});
incoming(St = #{wsbuf := WsBuf}, Data) ->
    ws_frames(St#{wsbuf := <<WsBuf/binary, Data/binary>>}).

%% Frame by frame, so that MQTT packets are handled in the order they came
%% (a DISCONNECT before a close frame is a clean disconnect).
ws_frames(St = #{wsbuf := WsBuf, frag := Frag}) ->
    case emqx_double_ws:parse_frame(WsBuf) of
        more -> {ok, St};
        {error, Code} -> {stop, ws_close(St, Code), malformed};
        {ok, Fin, Op, Payload, Rest} ->
            St1 = St#{wsbuf := Rest},
            Next = fun(S) -> case S of {ok, S1} -> ws_frames(S1); Stop -> Stop end end,
            case {Op, Frag} of
                %% binary frame, or a continuation of one: MQTT bytes
                {2, undefined} -> Next(ws_data(St1, Fin, Payload));
                {0, binary} -> Next(ws_data(St1, Fin, Payload));
                %% a text message: emqx_ws_connection shuts the connection
                {1, undefined} -> {stop, ws_close(St1, 1000), unexpected_ws_frame};
                {8, _} ->
                    Code = case Payload of <<C:16, _/binary>> -> <<C:16>>; _ -> <<>> end,
                    {stop, ws_close(St1, Code), closed};
                {9, _} -> ws_send(St1, 10, Payload), ws_frames(St1);
                {10, _} -> ws_frames(St1);
                _ -> {stop, ws_close(St1, 1002), malformed}
            end
    end.

ws_data(St = #{buf := Buf}, Fin, Payload) ->
    handle_data(St#{buf := <<Buf/binary, Payload/binary>>,
                    frag := case Fin of true -> undefined; false -> binary end}).

%% A close frame (once) with the status code (an integer or its 2 bytes).
ws_close(St = #{ws_closed := true}, _) -> St;
ws_close(St, Code) when is_integer(Code) -> ws_close(St, <<Code:16>>);
ws_close(St, Code) -> ws_send(St, 8, Code), St#{ws_closed := true}.

ws_send(#{transport := T, sock := Sock}, Op, Payload) ->
    sock(T, send, [Sock, emqx_double_ws:frame(Op, Payload)]).

%% MQTT packets in the buffer. -> {ok, St} | {stop, St, Why}
handle_data(St = #{buf := Buf}) ->
    case parse_packet(Buf) of
        more -> {ok, St};
        error -> {stop, St, malformed};
        {ok, Type, Flags, Body, Rest} ->
            case handle_packet(Type, Flags, Body, St#{buf := Rest}) of
                {ok, St1} -> handle_data(St1);
                Stop -> Stop
            end
    end.

parse_packet(<<Type:4, Flags:4, Rest/binary>>) ->
    case varint(Rest, 0, 1) of
        more -> more;
        error -> error;
        {Len, Rest1} when byte_size(Rest1) >= Len ->
            <<Body:Len/binary, Rest2/binary>> = Rest1,
            {ok, Type, Flags, Body, Rest2};
        {_, _} -> more
    end;
parse_packet(_) -> more.

varint(_, _, M) when M > 128 * 128 * 128 -> error;
varint(<<>>, _, _) -> more;
varint(<<1:1, B:7, Rest/binary>>, Acc, M) -> varint(Rest, Acc + B * M, M * 128);
varint(<<0:1, B:7, Rest/binary>>, Acc, M) -> {Acc + B * M, Rest}.

enc_varint(N) when N < 128 -> <<N>>;
enc_varint(N) -> <<1:1, (N rem 128):7, (enc_varint(N div 128))/binary>>.

packet(Type, Flags, Body) ->
    B = iolist_to_binary(Body),
    [<<Type:4, Flags:4>>, enc_varint(byte_size(B)), B].

send(St = #{transport := T, sock := Sock}, Type, Flags, Body) ->
    case T of
        _ when T =:= ws; T =:= wss -> ws_send(St, 2, packet(Type, Flags, Body));
        _ -> sock(T, send, [Sock, packet(Type, Flags, Body)])
    end.

props(<<>>) -> {<<>>, <<>>};
props(Bin) ->
    case varint(Bin, 0, 1) of
        {Len, Rest} -> <<P:Len/binary, R/binary>> = Rest, {P, R};
        _ -> throw(malformed)
    end.

str(<<L:16, S:L/binary, Rest/binary>>) -> {S, Rest};
str(_) -> throw(malformed).

handle_packet(Type, Flags, Body, St) ->
    try do_packet(Type, Flags, Body, St)
    catch throw:malformed -> {stop, St, malformed};
          error:{badmatch, _} -> {stop, St, malformed}
    end.

do_packet(?CONNECT, _, Body, St = #{connected := false}) ->
    {_ProtoName, R0} = str(Body),
    <<Ver:8, UserFlag:1, PassFlag:1, WillRetain:1, WillQoS:2, WillFlag:1, _Clean:1, _:1,
      KeepAlive:16, R1/binary>> = R0,
    {_, R2} = case Ver of 5 -> props(R1); _ -> {<<>>, R1} end,
    {ClientId0, R3} = str(R2),
    {Will, R4} = case WillFlag of
                     1 ->
                         {_, W0} = case Ver of 5 -> props(R3); _ -> {<<>>, R3} end,
                         {WT, W1} = str(W0),
                         {WP, W2} = str(W1),
                         {{WT, WP, min(WillQoS, 1), WillRetain =:= 1}, W2};
                     0 -> {undefined, R3}
                 end,
    {User, R5} = case UserFlag of 1 -> str(R4); 0 -> {undefined, R4} end,
    {Pass, _} = case PassFlag of 1 -> str(R5); 0 -> {undefined, R5} end,
    St1 = St#{ver := Ver},
    {ClientId, Assigned} = case ClientId0 of
                               <<>> -> Id = gen_id(), {Id, Id};
                               _ -> {ClientId0, <<>>}
                           end,
    Info = #{zone => maps:get(zone, St), username => User, clientid => ClientId,
             peerhost => peerhost(St), password => Pass},
    case authenticate(St1, Info) of
        {error, _} ->
            %% 4.4.4 answers every failed authentication with not_authorized.
            RC = case Ver of 5 -> 16#87; _ -> 5 end,
            connack(St1, RC, <<>>),
            {stop, St1, not_authorized};
        {ok, Super} ->
            takeover(ClientId),
            ets:insert(?CLIENTS, {ClientId, self()}),
            N = ets:info(?CLIENTS, size),
            [note_max(K, N) || K <- [connections, live_connections, channels, sessions]],
            connack(St1, 0, Assigned),
            %% The CONNECT (authentication above all) grew the heap to some
            %% 50 KB; most clients then sit idle: give it back now.
            erlang:garbage_collect(),
            {ok, St1#{client := ClientId, keepalive := KeepAlive, will := Will,
                      connected := true,
                      info => maps:remove(password, Info#{superuser => Super})}}
    end;
do_packet(_, _, _, St = #{connected := false}) ->
    {stop, St, not_connected};
do_packet(?PUBLISH, Flags, Body, St = #{ver := Ver}) ->
    QoS = (Flags bsr 1) band 3,
    Retain = Flags band 1 =:= 1,
    {Topic, R0} = str(Body),
    {PacketId, R1} = case QoS of 0 -> {undefined, R0}; _ -> <<I:16, R/binary>> = R0, {I, R} end,
    {_, Payload} = case Ver of 5 -> props(R1); _ -> {<<>>, R1} end,
    %% acl_deny_action = ignore (4.4.4's default): a denied message is dropped.
    Allowed = emqx_double_auth:check_acl(maps:get(info, St), publish, Topic) =:= allow,
    Allowed andalso publish(Topic, Payload, min(QoS, 1), Retain),
    case QoS of
        0 -> ok;
        1 when not Allowed, Ver =:= 5 -> send(St, ?PUBACK, 0, <<PacketId:16, 16#87>>);
        1 -> send(St, ?PUBACK, 0, <<PacketId:16>>);
        2 -> send(St, ?PUBREC, 0, <<PacketId:16>>);
        _ -> throw(malformed)
    end,
    {ok, St};
do_packet(?PUBREL, _, <<Id:16, _/binary>>, St) ->
    send(St, ?PUBCOMP, 0, <<Id:16>>), {ok, St};
do_packet(?PUBACK, _, _, St) -> {ok, St};
do_packet(?PUBREC, _, <<Id:16, _/binary>>, St) ->
    send(St, ?PUBREL, 2, <<Id:16>>), {ok, St};
do_packet(?PUBCOMP, _, _, St) -> {ok, St};
do_packet(?SUBSCRIBE, _, <<Id:16, R0/binary>>, St = #{ver := Ver}) ->
    {_, R1} = case Ver of 5 -> props(R0); _ -> {<<>>, R0} end,
    Denied = case Ver of 5 -> 16#87; _ -> 16#80 end,
    Codes = [case emqx_double_auth:check_acl(maps:get(info, St), subscribe, F) of
                 allow -> subscribe(F, Opts band 3);
                 deny -> Denied
             end || {F, Opts} <- sub_list(R1)],
    Body = case Ver of 5 -> [<<Id:16, 0>>, Codes]; _ -> [<<Id:16>>, Codes] end,
    send(St, ?SUBACK, 0, Body),
    {ok, St};
do_packet(?UNSUBSCRIBE, _, <<Id:16, R0/binary>>, St = #{ver := Ver}) ->
    {_, R1} = case Ver of 5 -> props(R0); _ -> {<<>>, R0} end,
    Codes = [unsubscribe(F) || F <- unsub_list(R1)],
    Body = case Ver of 5 -> [<<Id:16, 0>>, Codes]; _ -> <<Id:16>> end,
    send(St, ?UNSUBACK, 0, Body),
    {ok, St};
do_packet(?PINGREQ, _, _, St) ->
    send(St, ?PINGRESP, 0, <<>>), {ok, St};
do_packet(?DISCONNECT, _, _, St) ->
    {stop, St#{will := undefined}, normal};
do_packet(_, _, _, St) ->
    {stop, St, malformed}.

sub_list(<<>>) -> [];
sub_list(Bin) ->
    {F, <<Opts:8, Rest/binary>>} = str(Bin),
    [{F, Opts} | sub_list(Rest)].

unsub_list(<<>>) -> [];
unsub_list(Bin) -> {F, Rest} = str(Bin), [F | unsub_list(Rest)].

subscribe(Filter, QoS) ->
    case valid_filter(Filter) of
        false -> 16#80;
        true ->
            Granted = min(QoS, 1),
            ets:match_delete(?SUBS, {Filter, self(), '_'}),
            ets:insert(?SUBS, {Filter, self(), Granted}),
            N = ets:info(?SUBS, size),
            [note_max(K, N) || K <- [subscriptions, suboptions, subscribers]],
            Granted
    end.

unsubscribe(Filter) ->
    case ets:match_object(?SUBS, {Filter, self(), '_'}) of
        [] -> 16#11;
        _ -> ets:match_delete(?SUBS, {Filter, self(), '_'}), 0
    end.

connack(St = #{ver := 5}, RC, Assigned) ->
    Props = case Assigned of
                <<>> -> <<>>;
                _ -> <<16#12, (byte_size(Assigned)):16, Assigned/binary>>
            end,
    send(St, ?CONNACK, 0, [<<0, RC>>, enc_varint(byte_size(Props)), Props]);
connack(St, RC, _) ->
    send(St, ?CONNACK, 0, <<0, RC>>).

send_publish(St = #{ver := Ver, pid_next := Next}, Topic, Payload, QoS) ->
    {IdBin, St1} = case QoS of
                       0 -> {<<>>, St};
                       _ -> {<<Next:16>>, St#{pid_next := Next rem 65535 + 1}}
                   end,
    Props = case Ver of 5 -> <<0>>; _ -> <<>> end,
    send(St, ?PUBLISH, QoS bsl 1,
         [<<(byte_size(Topic)):16>>, Topic, IdBin, Props, Payload]),
    St1.

%% emqx_auth_mysql checks the client against MySQL (emqx_double_auth). The
%% double checks no credentials for other auth plugins: with one active, a
%% client that gives a username is let in unchecked; without any,
%% allow_anonymous of the listener's zone (else the global one) decides.
authenticate(_St, Info = #{username := User}) ->
    case emqx_double:plugin_active(emqx_auth_mysql) of
        true -> emqx_double_auth:authenticate(Info);
        false ->
            case User =/= undefined andalso other_auth_plugin_active() of
                true -> {ok, false};
                false -> emqx_double_auth:authenticate(Info)
            end
    end.

other_auth_plugin_active() ->
    lists:any(fun({N, _, A}) -> A andalso lists:prefix("emqx_auth_", atom_to_list(N)) end,
              emqx_double:plugins()).

peerhost(#{transport := Transport, sock := Sock}) ->
    case sock(Transport, peername, [Sock]) of
        {ok, {Ip, _}} -> inet:ntoa(Ip);
        _ -> undefined
    end.

takeover(ClientId) ->
    case ets:lookup(?CLIENTS, ClientId) of
        [{_, Old}] when Old =/= self() -> Old ! {kick, self()};
        _ -> ok
    end.

gen_id() ->
    iolist_to_binary(["emqx-double-", integer_to_list(erlang:unique_integer([positive]))]).

close(St = #{sock := Sock, client := ClientId, will := Will, transport := T}, Why) ->
    case T of
        _ when T =:= ws; T =:= wss -> ws_close(St, 1000);
        _ -> ok
    end,
    case Will of
        {WT, WP, WQ, WR} when Why =/= normal, Why =/= kicked -> publish(WT, WP, WQ, WR);
        _ -> ok
    end,
    ets:match_delete(?SUBS, {'_', self(), '_'}),
    case ClientId of
        undefined -> ok;
        _ -> ets:delete_object(?CLIENTS, {ClientId, self()})
    end,
    sock(maps:get(transport, St), close, [Sock]),
    exit(normal).
