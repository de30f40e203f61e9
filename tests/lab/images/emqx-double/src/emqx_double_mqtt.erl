%% emqx-double (a test double of EMQX 4.4.4, not EMQX): a small MQTT broker.
%% MQTT 3.1, 3.1.1 and 5 over TCP: CONNECT, SUBSCRIBE (+ and # wildcards),
%% UNSUBSCRIBE, PUBLISH QoS 0/1 (QoS 2 handshake accepted, delivered at most
%% QoS 1), PINGREQ, DISCONNECT, last will. Authentication and ACL as
%% emqx_double_auth decides. No retained messages, no sessions. A publish is
%% delivered to local subscribers and forwarded to every other running node
%% of the cluster.
-module(emqx_double_mqtt).
-behaviour(gen_server).

-export([start_link/0, publish/4, connections/0, topic_match/2]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2, terminate/2]).
-export([acceptor/4, conn_init/2]).

-define(SUBS, emqx_double_subs).      %% bag {Filter, Pid, QoS}
-define(CLIENTS, emqx_double_clients). %% set {ClientId, Pid}

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
    Listeners = [{Proto, Name, V} || {Proto, Name} <- [{tcp, "external"}, {tcp, "internal"},
                                                       {ssl, "external"}],
                                     (V = emqx_double:conf(key(Proto, Name, ""))) =/= undefined],
    lists:foreach(fun({Proto, Name, Value}) -> listen(Proto, Name, Value) end, Listeners),
    {ok, #{}}.

key(Proto, Name, Suffix) -> "listener." ++ atom_to_list(Proto) ++ "." ++ Name ++ Suffix.

listen(Proto, Name, Value) ->
    {Ip, Port} = parse_bind(Value),
    Zone = emqx_double:conf(key(Proto, Name, ".zone"), Name),
    Opts = [binary, {active, false}, {reuseaddr, true}, {nodelay, true}, {backlog, 1024}
            | [{ip, Ip} || Ip =/= any]],
    Listen = case Proto of
                 tcp -> gen_tcp:listen(Port, Opts);
                 ssl -> {ok, _} = application:ensure_all_started(ssl),
                        ssl:listen(Port, Opts ++ tls_options(Name))
             end,
    case Listen of
        {ok, L} ->
            emqx_double:say("MQTT listener ~s:~s on ~s (zone ~s)", [Proto, Name, Value, Zone]),
            spawn_link(?MODULE, acceptor, [Proto, L, Zone, self()]);
        {error, Reason} ->
            exit({mqtt_listen, Proto, Name, Value, Reason})
    end.

%% listener.ssl.<name>.* as 4.4.4 reads them (files relative to /opt/emqx).
tls_options(Name) ->
    Get = fun(K) -> emqx_double:conf(key(ssl, Name, "." ++ K)) end,
    File = fun(K) -> filename:absname(Get(K), emqx_double:root()) end,
    Versions = [list_to_atom(string:trim(V))
                || V <- string:split(case Get("tls_versions") of
                                        undefined -> "tlsv1.3,tlsv1.2,tlsv1.1,tlsv1";
                                        Vs -> Vs
                                    end, ",", all)],
    Verify = case Get("verify") of "verify_peer" -> verify_peer; _ -> verify_none end,
    [{certfile, File("certfile")}, {keyfile, File("keyfile")}, {verify, Verify},
     {versions, [V || V <- Versions, lists:member(V, ['tlsv1.3', 'tlsv1.2', 'tlsv1.1', tlsv1])]},
     {fail_if_no_peer_cert, Get("fail_if_no_peer_cert") =:= "true"}]
    ++ [{cacertfile, File("cacertfile")} || Get("cacertfile") =/= undefined].

parse_bind(Value) ->
    case string:split(Value, ":", trailing) of
        [Port] -> {any, list_to_integer(string:trim(Port))};
        [Host, Port] ->
            {ok, Ip} = inet:parse_address(string:trim(Host, both, "[]")),
            {Ip, list_to_integer(Port)}
    end.

handle_call(_, _From, S) -> {reply, ok, S}.
handle_cast(_, S) -> {noreply, S}.

handle_info({route, Topic, Payload, QoS, Retain}, S) ->
    deliver_local(Topic, Payload, QoS, Retain),
    {noreply, S};
handle_info({'EXIT', _, normal}, S) -> {noreply, S};
handle_info({'EXIT', _, Reason}, S) -> {stop, Reason, S};
handle_info(_, S) -> {noreply, S}.

terminate(_, _) -> ok.

%% For TLS the handshake runs in the connection process, so a slow or failed
%% one holds up nobody else.
acceptor(Proto, L, Zone, Server) ->
    case sock(Proto, accept, [L]) of
        {ok, Sock} ->
            Pid = spawn(?MODULE, conn_init, [{Proto, Sock}, Zone]),
            case sock(Proto, controlling_process, [Sock, Pid]) of
                ok -> Pid ! go;
                _ -> sock(Proto, close, [Sock]), exit(Pid, kill)
            end,
            acceptor(Proto, L, Zone, Server);
        {error, Reason} when Proto =:= tcp; Reason =:= closed ->
            exit({accept, Reason});
        {error, _} ->
            acceptor(Proto, L, Zone, Server)
    end.

%% One socket call over plain TCP or TLS.
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

conn_init({Transport, Sock0}, Zone) ->
    receive go -> ok after 5000 -> exit(normal) end,
    process_flag(trap_exit, true),
    Sock = case Transport of
               tcp -> Sock0;
               ssl -> case ssl:handshake(Sock0, 10000) of
                          {ok, S} -> S;
                          {error, _} -> ssl:close(Sock0), exit(normal)
                      end
           end,
    St = #{sock => Sock, transport => Transport, zone => Zone, buf => <<>>, ver => 4,
           client => undefined, keepalive => 0, will => undefined, pid_next => 1,
           connected => false},
    setopts(St, [{active, once}]),
    conn_loop(St).

setopts(#{transport := T, sock := S}, Opts) -> sock(T, setopts, [S, Opts]).

conn_loop(St = #{sock := Sock, keepalive := KA, connected := Connected}) ->
    Timeout = if not Connected -> 10000; KA =:= 0 -> infinity; true -> KA * 1500 end,
    receive
        {Tag, Sock, Data} when Tag =:= tcp; Tag =:= ssl ->
            setopts(St, [{active, once}]),
            handle_data(St#{buf := <<(maps:get(buf, St))/binary, Data/binary>>});
        {Tag, Sock} when Tag =:= tcp_closed; Tag =:= ssl_closed -> close(St, closed);
        {Tag, Sock, _} when Tag =:= tcp_error; Tag =:= ssl_error -> close(St, closed);
        {deliver, Topic, Payload, QoS, _Retain} ->
            conn_loop(send_publish(St, Topic, Payload, QoS));
        {kick, _} -> close(St, kicked);
        _ -> conn_loop(St)
    after Timeout -> close(St, keepalive_timeout)
    end.

handle_data(St = #{buf := Buf}) ->
    case parse_packet(Buf) of
        more -> conn_loop(St);
        error -> close(St, malformed);
        {ok, Type, Flags, Body, Rest} ->
            case handle_packet(Type, Flags, Body, St#{buf := Rest}) of
                {ok, St1} -> handle_data(St1);
                {stop, St1, Why} -> close(St1, Why)
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

send(#{transport := T, sock := Sock}, Type, Flags, Body) -> sock(T, send, [Sock, packet(Type, Flags, Body)]).

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
            connack(St1, 0, Assigned),
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

close(St = #{sock := Sock, client := ClientId, will := Will}, Why) ->
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
