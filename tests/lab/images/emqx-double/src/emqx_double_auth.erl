%% emqx-double (a test double of EMQX 4.4.4, not EMQX): authentication and
%% ACL as 4.4.4 runs them for a node with emqx_auth_mysql:
%%
%% * CONNECT: the MySQL check (emqx_double_authdb.py asks the database) and
%%   then allow_anonymous. A user MySQL does not know falls through to
%%   allow_anonymous; a wrong password is refused.
%% * PUBLISH / SUBSCRIBE: superusers may do anything; else the MySQL rows
%%   (compiled in reverse order, as emqx_acl_mysql:compile/2 does), then the
%%   rules of acl_file in file order, then acl_nomatch. Usernames starting
%%   with $ skip the MySQL rows. No ACL cache.
-module(emqx_double_auth).
-behaviour(gen_server).

-export([start_link/0, authenticate/1, check_acl/3]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2, terminate/2]).

-define(PLUGIN, emqx_auth_mysql).

start_link() -> gen_server:start_link({local, ?MODULE}, ?MODULE, [], []).

%% Client: #{username, clientid, peerhost (string), password, zone}.
%% -> {ok, IsSuperuser} | {error, not_authorized | Reason}
authenticate(Client = #{zone := Zone}) ->
    Default = case anonymous_allowed(Zone) of
                  true -> {ok, false};
                  false -> {error, not_authorized}
              end,
    case emqx_double:plugin_active(?PLUGIN) of
        false -> Default;
        true ->
            case ask(auth, Client) of
                [[<<"ok">>, Super]] -> {ok, Super =:= <<"1">>};
                [[<<"not_found">>]] -> Default;
                [[<<"not_authorized">>]] -> {error, not_authorized};
                [[<<"error">>, Reason]] ->
                    emqx_double:say("[error] [MySQL] auth query failed: ~s", [unfield(Reason)]),
                    {error, unfield(Reason)}
            end
    end.

%% -> allow | deny
check_acl(#{superuser := true}, _PubSub, _Topic) -> allow;
check_acl(Client, PubSub, Topic) ->
    case mysql_acl(Client, PubSub, Topic) of
        {matched, AllowDeny} -> AllowDeny;
        nomatch ->
            case match(Client, Topic, [R || R <- file_rules(), applies(R, PubSub)]) of
                {matched, AllowDeny} -> AllowDeny;
                nomatch -> list_to_atom(emqx_double:conf("acl_nomatch", "allow"))
            end
    end.

anonymous_allowed(Zone) ->
    emqx_double:conf("zone." ++ Zone ++ ".allow_anonymous",
                     emqx_double:conf("allow_anonymous", "false")) =:= "true".

mysql_acl(#{username := <<"$", _/binary>>}, _, _) -> nomatch;
mysql_acl(Client, PubSub, Topic) ->
    case emqx_double:plugin_active(?PLUGIN)
         andalso emqx_double:plugin_conf(?PLUGIN, "auth.mysql.acl_query") =/= undefined of
        false -> nomatch;
        true ->
            case ask(acl, Client) of
                [[<<"rows">>, _] | Rows] ->
                    Rules = lists:foldl(fun(Row, Acc) -> [row_rule([unfield(F) || F <- Row]) | Acc] end,
                                        [], Rows),
                    match(Client, Topic, [R || R <- Rules, applies(R, PubSub)]);
                [[<<"error">>, Reason]] ->
                    emqx_double:say("[error] [MySQL] acl query failed: ~s", [unfield(Reason)]),
                    nomatch
            end
    end.

%% One mqtt_acl row (allow, ipaddr, username, clientid, access, topic).
row_rule([Allow, Ip, User, ClientId, Access, Topic]) ->
    Who = case User of
              <<"$all">> -> all;
              _ ->
                  case [W || {K, V} <- [{ipaddr, Ip}, {user, User}, {client, ClientId}],
                             V =/= null, V =/= <<>>, W <- [{K, V}]] of
                      [One] -> One;
                      Conds -> {'and', Conds}
                  end
          end,
    {allow_deny(Allow), Who, access(Access), [topic(Topic)]}.

allow_deny(<<"1">>) -> allow;
allow_deny(<<"0">>) -> deny.
access(<<"1">>) -> subscribe;
access(<<"2">>) -> publish;
access(<<"3">>) -> pubsub.
topic(<<"eq ", T/binary>>) -> {eq, T};
topic(T) -> T.

%% acl_file, as emqx_mod_acl_internal reads it (file:consult).
file_rules() ->
    File = filename:absname(emqx_double:conf("acl_file", "etc/acl.conf"), emqx_double:root()),
    case file:consult(File) of
        {ok, Terms} -> [file_rule(T) || T <- Terms];
        {error, Reason} ->
            emqx_double:say("[error] cannot read acl_file ~s: ~p", [File, Reason]),
            []
    end.

file_rule({A, all}) -> {A, all};
file_rule({A, Who, Access, Topics}) ->
    {A, file_who(Who), Access, [file_topic(T) || T <- Topics]}.

file_who(all) -> all;
file_who({K, V}) when K =:= user; K =:= client; K =:= ipaddr -> {K, bin(V)};
file_who({ipaddrs, L}) -> {'or', [{ipaddr, bin(V)} || V <- L]};
file_who({Op, L}) when Op =:= 'and'; Op =:= 'or' -> {Op, [file_who(W) || W <- L]}.

file_topic({eq, T}) -> {eq, bin(T)};
file_topic(T) -> bin(T).

bin(V) when is_list(V) -> list_to_binary(V);
bin(V) when is_binary(V) -> V.

applies({_, all}, _) -> true;
applies({_, _, Access, _}, PubSub) -> Access =:= PubSub orelse Access =:= pubsub.

%% emqx_access_rule:match/3, first rule that matches.
match(_, _, []) -> nomatch;
match(_, _, [{A, all} | _]) -> {matched, A};
match(Client, Topic, [{A, Who, _, Filters} | Rules]) ->
    case who(Client, Who) andalso
         lists:any(fun(F) -> topic_match(Client, Topic, F) end, Filters) of
        true -> {matched, A};
        false -> match(Client, Topic, Rules)
    end.

who(_, all) -> true;
who(#{username := U}, {user, U}) -> true;
who(#{clientid := C}, {client, C}) -> true;
who(#{peerhost := Ip}, {ipaddr, Cidr}) -> cidr_match(Ip, Cidr);
who(Client, {'and', Conds}) -> lists:all(fun(W) -> who(Client, W) end, Conds);
who(Client, {'or', Conds}) -> lists:any(fun(W) -> who(Client, W) end, Conds);
who(_, _) -> false.

topic_match(_, Topic, {eq, F}) -> Topic =:= F;
topic_match(Client, Topic, F) ->
    Words = [feed(W, Client) || W <- binary:split(F, <<"/">>, [global])],
    emqx_double_mqtt:topic_match(Topic, iolist_to_binary(lists:join(<<"/">>, Words))).

feed(<<"%u">>, #{username := U}) when is_binary(U) -> U;
feed(<<"%c">>, #{clientid := C}) when is_binary(C) -> C;
feed(W, _) -> W.

cidr_match(Ip, Cidr) ->
    {Addr, Len} = case binary:split(Cidr, <<"/">>) of
                      [A, L] -> {A, binary_to_integer(L)};
                      [A] -> {A, 32}
                  end,
    case {inet:parse_ipv4_address(binary_to_list(Addr)), inet:parse_ipv4_address(Ip)} of
        {{ok, {A1, B1, C1, D1}}, {ok, {A2, B2, C2, D2}}} ->
            <<Net:Len, _/bitstring>> = <<A1, B1, C1, D1>>,
            <<Net2:Len, _/bitstring>> = <<A2, B2, C2, D2>>,
            Net =:= Net2;
        _ -> false
    end.

%% ---------------------------------------------------------------------------
%% The port to emqx_double_authdb.py, opened when first needed.

ask(Op, Client) ->
    Timeout = 10000,
    gen_server:call(?MODULE, {ask, Op, Client}, Timeout + 1000).

init([]) ->
    process_flag(trap_exit, true),
    {ok, #{port => undefined}}.

handle_call({ask, Op, Client}, _From, S) ->
    Port = case S of #{port := undefined} -> open(); #{port := P} -> P end,
    Fields = [maps:get(username, Client, undefined), maps:get(clientid, Client, undefined),
              maps:get(peerhost, Client, undefined)]
             ++ [maps:get(password, Client, undefined) || Op =:= auth],
    port_command(Port, [atom_to_list(Op), [[$\t, field(F)] || F <- Fields], $\n]),
    case read_answer(Port, Op) of
        {ok, Lines} -> {reply, Lines, S#{port := Port}};
        {error, Reason} ->
            catch port_close(Port),
            {reply, [[<<"error">>, field(io_lib:format("~p", [Reason]))]], S#{port := undefined}}
    end;
handle_call(_, _From, S) -> {reply, ok, S}.

handle_cast(_, S) -> {noreply, S}.
handle_info({'EXIT', Port, _}, S = #{port := Port}) -> {noreply, S#{port := undefined}};
handle_info(_, S) -> {noreply, S}.
terminate(_, _) -> ok.

open() ->
    Conf = fun(Key) -> case emqx_double:plugin_conf(?PLUGIN, "auth.mysql." ++ Key) of
                           undefined -> false;
                           V -> V
                       end end,
    %% auth.mysql.ssl.verify -> AUTHDB_SSL_VERIFY, ...; AUTHDB_ROOT for relative files.
    Env = [{"AUTHDB_" ++ string:to_upper([case C of $. -> $_; _ -> C end || C <- K]), Conf(K)}
           || K <- ["server", "username", "password", "database", "query_timeout",
                    "auth_query", "super_query", "acl_query", "password_hash",
                    "ssl", "ssl.cacertfile", "ssl.cafile", "ssl.certfile", "ssl.keyfile",
                    "ssl.verify", "ssl.server_name_indication"]]
          ++ [{"AUTHDB_ROOT", emqx_double:root()}],
    Script = filename:join([emqx_double:root(), "lib", "emqx-double", "emqx_double_authdb.py"]),
    open_port({spawn_executable, "/usr/bin/python3"},
              [{args, [Script]}, {env, Env}, {line, 1 bsl 20}, binary, exit_status]).

read_answer(Port, Op) ->
    case read_line(Port) of
        {ok, Line = [<<"rows">>, N]} when Op =:= acl ->
            Rows = [element(2, read_line(Port)) || _ <- lists:seq(1, binary_to_integer(N))],
            {ok, [Line | Rows]};
        {ok, Line} -> {ok, [Line]};
        Error -> Error
    end.

read_line(Port) ->
    receive
        {Port, {data, {eol, Line}}} -> {ok, binary:split(Line, <<"\t">>, [global])};
        {Port, {exit_status, Status}} -> {error, {authdb_exited, Status}}
    after 10000 -> {error, timeout}
    end.

field(undefined) -> "-";
field(V) -> [$x, binary:encode_hex(iolist_to_binary(V))].

unfield(<<"-">>) -> null;
unfield(<<"x", Hex/binary>>) -> binary:decode_hex(Hex).
